"""What every load strategy shares: the context, the summary, schema evolution, merge and watermarks."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from sqlglot import exp

from include.control.model import ControlRow
from include.dataloader.queries import Cursor
from include.dataloader.source import SourceTable
from include.dataloader.target import TableName, Warehouse, null_safe, spark_ident

log = logging.getLogger(__name__)


Interval = tuple[str, str]  # [start, end) of the cursor: a backfill run's data interval


class SchemaChangeError(ValueError):
    """The source changed a column's type in a way the target cannot take without a decision."""


@dataclass
class LoadSummary:
    control_key: str
    strategy: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    watermark: str | None = None
    watermark_rows: int | None = None  # target rows at ``watermark``: what a wait outside the load compares
    duration_seconds: float = 0.0
    skipped: bool = False
    message: str | None = None
    added_columns: list[str] = field(default_factory=list)
    chunk: dict[str, Any] | None = None
    switch_to_strategy: str | None = None

    @property
    def rows_processed(self) -> int:
        return self.inserted + self.updated + self.deleted

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


@dataclass
class LoadContext:
    """One table's load: its source, where its Delta table lives, and the clock."""

    source: SourceTable
    warehouse: Warehouse
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def row(self) -> ControlRow:
        return self.source.row

    @property
    def spark(self) -> SparkSession:
        return self.warehouse.spark

    @property
    def target(self) -> TableName:
        r = self.row
        return TableName(r.destination_catalog, r.destination_schema, r.destination_table_name)

    @property
    def keys(self) -> list[str]:
        return [self.source.target_name(c) for c in self.row.primary_key_columns]

    def summary(self, started: float, **values: Any) -> LoadSummary:
        return LoadSummary(
            control_key=self.row.control_key,
            strategy=self.row.load_strategy,
            duration_seconds=round(time.monotonic() - started, 3),
            **values,
        )


# -- literals in Spark SQL ----------------------------------------------------------------------------


def spark_literal(cursor: Cursor, value: Any) -> str:
    """A cursor value as a typed Spark SQL literal (for predicates on the Delta table)."""
    if cursor.kind == "integer":
        return str(int(value))
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    if cursor.kind == "date":
        kind = "DATE"
        text = value.isoformat() if isinstance(value, date) else text[:10]
    elif cursor.with_time_zone:
        kind = "TIMESTAMP"  # the session time zone is UTC; an offset in the text is honoured
    else:
        kind = "TIMESTAMP_NTZ"
    return f"CAST({exp.Literal.string(text).sql(dialect='spark')} AS {kind})"


# -- schema evolution ---------------------------------------------------------------------------------


def evolve_schema(ctx: LoadContext) -> list[str]:
    """Add the source's new columns to the target; stop on a changed type. Returns the added columns.

    Compares the types the source declares (what every read is cast to), so no data is analysed.
    Explicit ALTER (delta-rs locally) rather than ``mergeSchema``, which Sail silently ignores.
    """
    target_types = {f.name.lower(): f.dataType.simpleString() for f in ctx.warehouse.read(ctx.target).schema.fields}
    added: list[tuple[str, str]] = []
    for name, want in ctx.source.spark_types.items():
        have = target_types.get(name.lower())
        if have is None:
            added.append((name, want))
        elif have != want:
            raise SchemaChangeError(
                f"{ctx.row.control_key}: column {name!r} is {want} at the source but {have} in {ctx.target}; "
                "the load stopped. Cast the column at the source (a view), or migrate the target column "
                "and reload with a full load"
            )
    if added:
        log.info("%s: adding columns %s to %s", ctx.row.control_key, added, ctx.target)
        ctx.warehouse.add_columns(ctx.target, added)
    return [name for name, _ in added]


def align(ctx: LoadContext, df: DataFrame) -> DataFrame:
    """``df`` (a read of the source) in the target's column order, with NULLs for target columns the source
    no longer has. Uses the declared source columns: asking ``df`` would analyse all its rows."""
    have = {c.lower(): c for c in ctx.source.spark_types}
    projection = []
    for f in ctx.warehouse.read(ctx.target).schema.fields:
        source = have.get(f.name.lower())
        projection.append(F.col(f"`{source}`") if source else F.lit(None).cast(f.dataType).alias(f.name))
    return df.select(*projection)


# -- writing ------------------------------------------------------------------------------------------


def latest_per_key(df: DataFrame, keys: list[str], order_by: str | None) -> DataFrame:
    """One row per key: the one with the largest ``order_by`` (a merge needs unique source keys)."""
    if order_by is None:
        return df.dropDuplicates(keys)
    window = Window.partitionBy(*[F.col(f"`{k}`") for k in keys]).orderBy(F.col(f"`{order_by}`").desc_nulls_last())
    return df.withColumn("__rank", F.row_number().over(window)).where("__rank = 1").drop("__rank")


@dataclass
class MergeCounts:
    rows: int
    inserted: int
    updated: int
    deleted: int = 0
    added_columns: list[str] = field(default_factory=list)


def stage(ctx: LoadContext, df: DataFrame) -> TableName:
    """``df`` written to a new staging table of the target (aligned to the target's columns), after
    dropping the staging tables a killed run left behind."""
    ctx.warehouse.drop_staging_leftovers(ctx.target)
    staging = ctx.target.staging()
    ctx.warehouse.write(align(ctx, df), staging, mode="overwrite")
    return staging


def upsert(ctx: LoadContext, df: DataFrame, *, delete_missing_where: str | None = None) -> MergeCounts:
    """Merge ``df`` into the target by primary key, creating the target on the first load.

    The rows are staged in a Delta table first (``<table>__stg_<id>``, dropped afterwards), so the
    source is read once and the counts describe exactly what was merged (``updated``: staged rows whose
    key the target has, changed or not). Only changed rows are rewritten, and when no staged row differs
    from the target (rows re-read at the watermark) no Delta version is written (``Warehouse.merge``).
    ``delete_missing_where`` deletes target rows matching it whose key is not in ``df`` (WHEN NOT
    MATCHED BY SOURCE).
    """
    if not ctx.warehouse.exists(ctx.target):
        ctx.warehouse.write(df, ctx.target, mode="overwrite")
        rows = ctx.warehouse.read(ctx.target).count()
        return MergeCounts(rows=rows, inserted=rows, updated=0)

    added = evolve_schema(ctx)
    staging = stage(ctx, df)
    try:
        merged = ctx.warehouse.merge(ctx.target, staging, ctx.keys, delete_missing_where=delete_missing_where)
    finally:
        ctx.warehouse.drop(staging)
    return MergeCounts(
        rows=merged.rows,
        inserted=merged.inserted,
        updated=merged.matched,
        deleted=merged.deleted,
        added_columns=added,
    )


def delete_where(ctx: LoadContext, predicate: str) -> int:
    """Delete target rows matching ``predicate``; returns how many."""
    if not ctx.warehouse.exists(ctx.target):
        return 0
    tgt = ctx.warehouse.ref(ctx.target)
    predicate = null_safe(predicate)
    count = ctx.spark.sql(f"SELECT count(*) AS n FROM {tgt} WHERE {predicate}").collect()[0]["n"]
    if count:
        ctx.spark.sql(f"DELETE FROM {tgt} WHERE {predicate}").collect()
    return count


# -- watermarks ---------------------------------------------------------------------------------------


def committed_watermark(ctx: LoadContext, cursor: Cursor) -> str | None:
    """MAX(cursor) of the committed target: what is in the table, not what was read."""
    if not ctx.warehouse.exists(ctx.target):
        return None
    column = spark_ident(ctx.source.target_name(cursor.column))
    value = ctx.spark.sql(f"SELECT CAST(MAX({column}) AS STRING) AS w FROM {ctx.warehouse.ref(ctx.target)}").collect()[
        0
    ]["w"]
    if value is None:
        return None
    return f"{value}+00:00" if cursor.with_time_zone and cursor.kind == "timestamp" else value


def rows_at_watermark(ctx: LoadContext, cursor: Cursor, watermark: str | None) -> int | None:
    """Target rows whose cursor is exactly ``watermark`` (None without one): a read ``>= watermark``
    re-reads them, so a source with more rows there has rows the target does not have yet."""
    if watermark is None:
        return None
    if not ctx.warehouse.exists(ctx.target):
        return 0
    column = spark_ident(ctx.source.target_name(cursor.column))
    return ctx.spark.sql(
        f"SELECT count(*) AS n FROM {ctx.warehouse.ref(ctx.target)} WHERE {column} = {spark_literal(cursor, watermark)}"
    ).collect()[0]["n"]


def lookback_start(cursor: Cursor, watermark: str | None, lookback_minutes: int | None) -> Any:
    """Where a read past ``watermark`` starts: the watermark, or earlier by the lookback window."""
    if watermark is None or not lookback_minutes or cursor.kind == "integer":
        return watermark
    if cursor.kind == "date":
        whole_days = -(-lookback_minutes // (24 * 60))  # a date lookback rounds up to whole days
        return (date.fromisoformat(watermark[:10]) - timedelta(days=whole_days)).isoformat()
    return (datetime.fromisoformat(watermark) - timedelta(minutes=lookback_minutes)).isoformat(sep=" ")
