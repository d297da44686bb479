"""Which staged rows the target already has: NULL-safe equality on some columns, against the whole
target, without reading the whole target (append_only's deduplication, a merge's change detection)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from sqlglot import exp

from include.dataloader.target import TableName, Warehouse, spark_ident

# types whose MIN and MAX survive a round trip through their text form (a Spark SQL literal)
RANGE_TYPES = ("tinyint", "smallint", "int", "bigint", "date", "timestamp", "timestamp_ntz", "string")


def not_in_target(
    warehouse: Warehouse, target: TableName, staging: TableName, columns: list[str], *, prefer: str | None = None
) -> DataFrame:
    """The staged rows that no target row equals on ``columns`` (NULL-safe), against the whole target."""
    stg = warehouse.ref(staging)
    on = " AND ".join(f"s.{spark_ident(c)} <=> t.{spark_ident(c)}" for c in columns)
    subquery = target_slice(warehouse, target, staging, columns, prefer=prefer)
    return warehouse.spark.sql(f"SELECT s.* FROM {stg} s LEFT ANTI JOIN {subquery} t ON {on}")


def target_slice(
    warehouse: Warehouse, target: TableName, staging: TableName, columns: list[str], *, prefer: str | None = None
) -> str:
    """The part of the target that rows of ``staging`` can equal on ``columns``, as a subquery.

    Only ``columns`` are read, and only in the staged range of one of them (``prefer`` first, e.g. the
    cursor; then a key), so Delta's file statistics skip the files outside it and a large target is not
    read whole.
    """
    types = {f.name: f.dataType.simpleString() for f in warehouse.read(target).schema.fields}
    ordered = ([prefer] if prefer in columns else []) + columns
    ranged = next((c for c in ordered if types.get(c) in RANGE_TYPES or types.get(c, "").startswith("decimal")), None)
    where = f" WHERE {staged_range(warehouse, staging, ranged, types[ranged])}" if ranged is not None else ""
    projection = ", ".join(spark_ident(c) for c in columns)
    return f"(SELECT {projection}, true AS __hit FROM {warehouse.ref(target)}{where})"


def staged_range(warehouse: Warehouse, staging: TableName, column: str, kind: str) -> str:
    """A predicate on the target: ``column`` inside the staged rows' MIN..MAX, or NULL if they have NULLs."""
    col = spark_ident(column)
    bounds = warehouse.spark.sql(
        f"SELECT CAST(min({col}) AS STRING) AS lo, CAST(max({col}) AS STRING) AS hi, "
        f"count(*) - count({col}) AS nulls FROM {warehouse.ref(staging)}"
    ).collect()[0]
    parts = []
    if bounds["lo"] is not None:
        spark_type = exp.DataType.build(kind, dialect="spark")
        lo, hi = (exp.cast(exp.Literal.string(bounds[b]), spark_type) for b in ("lo", "hi"))
        parts.append(exp.Between(this=exp.column(column, quoted=True), low=lo, high=hi).sql(dialect="spark"))
    if bounds["nulls"] or not parts:
        parts.append(f"{col} IS NULL")
    return " OR ".join(parts)
