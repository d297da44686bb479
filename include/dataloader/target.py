"""Where Delta tables live: Unity Catalog on Databricks, or a local warehouse folder.

The load strategies are the same Spark code for both; only naming a table, creating it and adding
columns differ. Locally ``catalog.schema.table`` maps to ``<root>/catalog/schema/table``.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from pyspark.sql import DataFrame, SparkSession
from sqlglot import exp

from include.dataloader.staging import ExtractStaging

log = logging.getLogger(__name__)

EXTRACT_FOLDER = "_extract"  # beside the catalogs: extracted rows staged as Parquet during a load
LOCAL_FILE_BYTES = 32 * 1024 * 1024  # target size of the local engine's Delta data files


@dataclass(frozen=True)
class Merged:
    """What merging a staging table into its target did."""

    rows: int  # staged rows
    inserted: int
    matched: int  # staged rows whose key the target has, changed or not
    deleted: int = 0


def spark_ident(name: str) -> str:
    """An identifier quoted for Spark SQL."""
    return exp.to_identifier(name, quoted=True).sql(dialect="spark")


def null_safe(predicate: str) -> str:
    """``predicate`` made FALSE where it is NULL. A ``replaceWhere`` overwrite on the local engine removes
    the rows of a rewritten file for which the predicate is NULL (a NULL cursor), not only those for which
    it is TRUE: every predicate that picks target rows to remove goes through this. (Sail refuses
    ``coalesce`` there; ``IS TRUE`` works on both engines.)"""
    return f"({predicate}) IS TRUE"


@dataclass(frozen=True)
class TableName:
    catalog: str
    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"

    def staging(self) -> TableName:
        return TableName(self.catalog, self.schema, f"{self.table}__stg_{uuid.uuid4().hex[:12]}")

    def is_staging(self, table: str, *, ignore_case: bool = False) -> bool:
        """Whether ``table`` (in the same schema) is one of this table's staging tables."""
        pattern = re.escape(self.table) + r"__stg_[0-9a-f]{12}"
        return re.fullmatch(pattern, table, re.IGNORECASE if ignore_case else 0) is not None


class Warehouse(ABC):
    def __init__(self, spark: SparkSession):
        self.spark = spark

    @abstractmethod
    def ref(self, name: TableName) -> str:
        """The table as a Spark SQL table reference."""

    @abstractmethod
    def exists(self, name: TableName) -> bool: ...

    @abstractmethod
    def write(self, df: DataFrame, name: TableName, *, mode: str, replace_where: str | None = None) -> None:
        """Write ``df``: mode ``overwrite`` (one atomic commit) or ``append``; ``replace_where`` limits an
        overwrite to the rows that match the predicate."""

    @abstractmethod
    def add_columns(self, name: TableName, columns: list[tuple[str, str]]) -> None:
        """Add nullable columns (name, Spark SQL type) to an existing table."""

    @abstractmethod
    def drop(self, name: TableName) -> None: ...

    @abstractmethod
    def staging_tables(self, name: TableName) -> list[TableName]:
        """The staging tables of ``name`` that exist (``<table>__stg_<id>``)."""

    def drop_staging_leftovers(self, name: TableName) -> list[TableName]:
        """Drop the staging tables a killed run of ``name`` left behind. Safe: runs that write one table
        wait for each other, so no other run of this table is using one."""
        leftovers = self.staging_tables(name)
        for table in leftovers:
            log.info("dropping %s, left behind by an earlier run of %s", table, name)
            self.drop(table)
        return leftovers

    def merge(
        self, target: TableName, staging: TableName, keys: list[str], *, delete_missing_where: str | None = None
    ) -> Merged:
        """Merge the rows of ``staging`` (same columns as ``target``, unique ``keys``) into ``target`` by
        ``keys``: new keys inserted, changed rows updated, unchanged rows left alone; when no row changes,
        no Delta version is written. ``delete_missing_where`` (a Spark SQL predicate on ``t.``) also deletes
        the target rows it matches whose key ``staging`` lacks.

        Spark SQL: a count query, then ``MERGE INTO`` only when something changes.
        """
        from include.dataloader.strategies.matching import target_slice  # matching builds on this module

        stg, tgt = self.ref(staging), self.ref(target)
        names = [f.name for f in self.read(staging).schema.fields]
        columns = [spark_ident(n) for n in names]
        on = " AND ".join(f"t.{spark_ident(k)} = s.{spark_ident(k)}" for k in keys)
        same = " AND ".join(f"s.{c} <=> t.{c}" for c in columns)
        existing = target_slice(self, target, staging, names, prefer=keys[0])
        counts = self.spark.sql(
            f"SELECT count(*) AS total, count(t.__hit) AS matched, "
            f"count(CASE WHEN t.__hit AND NOT ({same}) THEN 1 END) AS changed "
            f"FROM {stg} s LEFT JOIN {existing} t ON {on}"
        ).collect()[0]
        deleted = 0
        if delete_missing_where:
            deleted = self.spark.sql(
                f"SELECT count(*) AS n FROM {tgt} t WHERE {null_safe(delete_missing_where)} "
                f"AND NOT EXISTS (SELECT 1 FROM {stg} s WHERE {on})"
            ).collect()[0]["n"]
        inserted = counts["total"] - counts["matched"]
        if inserted or counts["changed"] or deleted:
            merge = (
                f"MERGE INTO {tgt} AS t USING {stg} AS s ON {on} "
                f"WHEN MATCHED AND NOT ({same}) THEN UPDATE SET {', '.join(f't.{c} = s.{c}' for c in columns)} "
                f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) "
                f"VALUES ({', '.join(f's.{c}' for c in columns)})"
            )
            if delete_missing_where:
                merge += f" WHEN NOT MATCHED BY SOURCE AND {null_safe(delete_missing_where)} THEN DELETE"
            self.spark.sql(merge).collect()
        return Merged(rows=counts["total"], inserted=inserted, matched=counts["matched"], deleted=deleted)

    def read(self, name: TableName) -> DataFrame:
        return self.spark.sql(f"SELECT * FROM {self.ref(name)}")

    def sql(self, query: str) -> DataFrame:
        return self.spark.sql(query)


class LocalWarehouse(Warehouse):
    """Delta tables in a folder; the stand-in for Unity Catalog on one machine."""

    def __init__(self, spark: SparkSession, root: Path):
        super().__init__(spark)
        self.root = Path(root).resolve()

    def path(self, name: TableName) -> Path:
        return self.root / name.catalog / name.schema / name.table

    def ref(self, name: TableName) -> str:
        return f"delta.{spark_ident(str(self.path(name)))}"

    def exists(self, name: TableName) -> bool:
        return (self.path(name) / "_delta_log").is_dir()

    def write(self, df: DataFrame, name: TableName, *, mode: str, replace_where: str | None = None) -> None:
        # Sail holds each data file in memory until it is complete: small files keep a write's memory
        # flat at any table size (measured: 8M rows peak at 1,014 MB by default, 637 MB with 32 MiB)
        writer = df.write.format("delta").mode(mode).option("targetFileSize", str(LOCAL_FILE_BYTES))
        if replace_where is not None:
            writer = writer.option("replaceWhere", null_safe(replace_where))
        writer.save(str(self.path(name)))

    def merge(
        self, target: TableName, staging: TableName, keys: list[str], *, delete_missing_where: str | None = None
    ) -> Merged:
        """delta-rs's merge rather than Sail's ``MERGE INTO`` (same result, same rules): one pass over the
        target that also counts, where Sail needs a count query and a MERGE that each join the whole target
        (measured in bench/RESULTS.md). The staged rows are read by delta-rs from the staging table's
        Delta log; when nothing changes delta-rs commits nothing."""
        import deltalake

        source = deltalake.DeltaTable(str(self.path(staging)))
        names = source.schema().to_arrow().names
        by_lower = {n.lower(): n for n in names}
        keys = [by_lower.get(k.lower(), k) for k in keys]  # Sail matches names without case, DataFusion not
        columns = [spark_ident(n) for n in names]
        # each comparison in parentheses: DataFusion's parser reads `a IS NOT DISTINCT FROM b AND c` as
        # `a IS NOT DISTINCT FROM (b AND c)`
        same = " AND ".join(f"(s.{c} IS NOT DISTINCT FROM t.{c})" for c in columns)
        merger = (
            deltalake.DeltaTable(str(self.path(target)))
            .merge(
                source.to_pyarrow_dataset().scanner().to_reader(),
                predicate=" AND ".join(f"t.{spark_ident(k)} = s.{spark_ident(k)}" for k in keys),
                source_alias="s",
                target_alias="t",
                # the source's key range prunes the target's files (the staged rows are held in memory)
                streamed_exec=False,
            )
            .when_matched_update({c: f"s.{c}" for c in columns}, predicate=f"NOT ({same})")
            .when_not_matched_insert({c: f"s.{c}" for c in columns})
        )
        if delete_missing_where:
            merger = merger.when_not_matched_by_source_delete(_delta_rs_predicate(null_safe(delete_missing_where)))
        metrics = merger.execute()
        inserted = metrics["num_target_rows_inserted"]
        return Merged(
            rows=metrics["num_source_rows"],
            inserted=inserted,
            matched=metrics["num_source_rows"] - inserted,
            deleted=metrics["num_target_rows_deleted"],
        )

    def add_columns(self, name: TableName, columns: list[tuple[str, str]]) -> None:
        # Sail has no ALTER TABLE ... ADD COLUMNS; delta-rs writes the same schema change to the log.
        import deltalake

        fields = [deltalake.Field(col, _delta_rs_type(kind), nullable=True) for col, kind in columns]
        deltalake.DeltaTable(str(self.path(name))).alter.add_columns(fields)

    def drop(self, name: TableName) -> None:
        shutil.rmtree(self.path(name), ignore_errors=True)

    def staging_tables(self, name: TableName) -> list[TableName]:
        folder = self.path(name).parent
        if not folder.is_dir():
            return []
        return [
            TableName(name.catalog, name.schema, p.name)
            for p in sorted(folder.iterdir())
            if p.is_dir() and name.is_staging(p.name)
        ]

    def extract_staging(self) -> ExtractStaging:
        """A new run's staging folder for extracted rows (made on first use)."""
        return ExtractStaging(self.root / EXTRACT_FOLDER)


class UnityCatalog(Warehouse):
    """Delta tables registered in Unity Catalog (Databricks)."""

    def ref(self, name: TableName) -> str:
        return ".".join(spark_ident(part) for part in (name.catalog, name.schema, name.table))

    # tableExists and saveAsTable parse their name as a multi-part identifier: quoted, part by part, so that
    # reserved words (a schema `select`, a table `order`) are names there too
    def exists(self, name: TableName) -> bool:
        return self.spark.catalog.tableExists(self.ref(name))

    def write(self, df: DataFrame, name: TableName, *, mode: str, replace_where: str | None = None) -> None:
        writer = df.write.format("delta").mode(mode)
        if replace_where is not None:
            writer = writer.option("replaceWhere", null_safe(replace_where))
        writer.saveAsTable(self.ref(name))

    def add_columns(self, name: TableName, columns: list[tuple[str, str]]) -> None:
        added = ", ".join(f"{spark_ident(col)} {kind}" for col, kind in columns)
        self.spark.sql(f"ALTER TABLE {self.ref(name)} ADD COLUMNS ({added})")

    def drop(self, name: TableName) -> None:
        self.spark.sql(f"DROP TABLE IF EXISTS {self.ref(name)}")

    def staging_tables(self, name: TableName) -> list[TableName]:
        # the catalog's information_schema rather than SHOW TABLES: plain SQL, with the schema as a literal
        query = (
            exp.select("table_name")
            .from_(exp.table_("tables", db="information_schema", catalog=name.catalog, quoted=True))
            .where(exp.column("table_schema").eq(exp.Literal.string(name.schema.lower())))
        )
        tables = self.spark.sql(query.sql(dialect="databricks")).collect()
        # Unity Catalog keeps names in lower case
        return [
            TableName(name.catalog, name.schema, t["table_name"])
            for t in tables
            if name.is_staging(t["table_name"], ignore_case=True)
        ]


def _delta_rs_type(spark_type: str) -> str:
    """Spark SQL type names as delta-rs spells them in a schema (the Delta protocol's names)."""
    spark_type = spark_type.lower()
    return {"int": "integer", "bigint": "long", "smallint": "short", "tinyint": "byte"}.get(spark_type, spark_type)


def _delta_rs_predicate(predicate: str) -> str:
    """A Spark SQL predicate as delta-rs (DataFusion) parses it: PostgreSQL's spelling of the same
    expression (``TIMESTAMP_NTZ`` is ``TIMESTAMP``, Spark's ``TIMESTAMP`` is ``TIMESTAMPTZ``)."""
    return sqlglot.parse_one(predicate, read="spark").sql(dialect="postgres")
