"""A source table: its declared columns, its queries, and reads cast to the declared types."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import sqlglot
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sqlglot import exp

from include.control.model import ControlRow
from include.dataloader.dialects import ColumnInfo, MissingDriver, SourceDialect, UnsupportedSourceType
from include.dataloader.naming import delta_column_names
from include.dataloader.queries import Cursor, SourceQueries
from include.dataloader.readers import Partitioning, SourceReader, UnreadableColumn
from include.dbapi import lost_connection, said


class SourceUnreachable(ConnectionError):
    """The source database refused the connection or dropped it mid-read (a restart, a network cut)."""


class SourceTableNotFound(LookupError):
    pass


@dataclass
class SourceTable:
    """:param row: the control row; its column settings name source columns."""

    row: ControlRow
    dialect: SourceDialect
    reader: SourceReader

    @property
    def label(self) -> str:
        return ".".join(p for p in (self.row.source_schema, self.row.source_table_name) if p)

    @cached_property
    def columns(self) -> list[ColumnInfo]:
        query = self.dialect.columns_query(self.row.source_schema, self.row.source_table_name)
        found = [
            ColumnInfo(r[0], r[1], _int(r[2]), _int(r[3]))
            for r in self._read(query).collect()  # small: one row per column
        ]
        if not found:
            raise SourceTableNotFound(
                f"{self.row.control_key}: source table {self.label} not found (or no columns visible) in "
                f"{self.dialect.name} database {self.row.db_config_key!r}; check source_schema and "
                "source_table_name, and the user's grants"
            )
        return found

    @cached_property
    def names(self) -> dict[str, str]:
        """Source column name -> Delta column name."""
        return delta_column_names([c.name for c in self.columns], table=self.label)

    @cached_property
    def spark_types(self) -> dict[str, str]:
        """Delta column name -> Spark SQL type, as the source declares it."""
        try:
            return {self.names[c.name]: self.dialect.spark_type(c) for c in self.columns}
        except UnsupportedSourceType as exc:
            raise UnsupportedSourceType(f"{self.row.control_key} (source table {self.label}): {exc}") from None

    @cached_property
    def queries(self) -> SourceQueries:
        return SourceQueries(
            self.dialect,
            self.row.source_schema,
            self.row.source_table_name,
            [c.name for c in self.columns],
            frozenset(c.name for c in self.columns if self.dialect.reads_as_text(c)),
            frozenset(c.name for c in self.columns if self.reader.native_driver and self.dialect.driver_inexact(c)),
        )

    def target_name(self, source_column: str) -> str:
        try:
            return self.names[source_column]
        except KeyError:
            raise KeyError(
                f"{self.row.control_key}: column {source_column!r} is not in source table {self.label} "
                f"(columns: {', '.join(self.names)})"
            ) from None

    def cursor(self, column: str | None = None, kind: str | None = None) -> Cursor:
        column = column or self.row.incremental_column
        return Cursor.of_type(column, self.spark_types[self.target_name(column)], kind)

    def partitioning(self, query: str | None = None) -> Partitioning | None:
        """How to split a read across connections: on a single integer primary key, from its MIN to
        its MAX in the rows ``query`` reads (the whole table by default); None when the reader cannot
        split, there is no such key, or no row."""
        keys = self.row.primary_key_columns
        if self.reader.num_partitions <= 1 or len(keys) != 1:
            return None
        if self.spark_types[self.target_name(keys[0])] not in ("int", "bigint", "smallint", "tinyint"):
            return None
        bounds = self.scalar_row(self.bounds_query(keys[0], query or self.queries.full()))
        if bounds["lower_bound"] is None:
            return None
        return Partitioning(keys[0], int(bounds["lower_bound"]), int(bounds["upper_bound"]), self.reader.num_partitions)

    def bounds_query(self, key: str, query: str) -> str:
        """MIN and MAX of ``key`` over the rows of ``query`` (a derived table: the same filter)."""
        src = exp.Subquery(
            this=sqlglot.parse_one(query, read=self.dialect.sqlglot),
            alias=exp.TableAlias(this=exp.to_identifier("src")),
        )
        col = exp.column(key, quoted=True)
        return (
            exp.select(exp.Min(this=col).as_("lower_bound"), exp.Max(this=col).as_("upper_bound"))
            .from_(src)
            .sql(dialect=self.dialect.sqlglot)
        )

    def read(self, query: str, *, parallel: bool = True) -> DataFrame:
        """The query's rows with Delta column names and the declared types (drivers drift:
        decimal(38,10) for numeric(12,2), timestamp_ntz for timestamptz, strings for numerics).

        Every strategy's read is split across connections when the reader can split it (Spark JDBC on
        Databricks), with bounds from the rows it reads; ``parallel=False`` keeps it one query.
        """
        # the queries select the declared columns in order: rename by position (asking the DataFrame
        # for its columns would make Spark analyse every row of a local relation)
        declared = self.spark_types  # first: an unmapped type stops the load before anything is read
        df = self._read(query, self.partitioning(query) if parallel else None).toDF(*declared)
        return df.select(*[F.col(f"`{name}`").cast(kind).alias(name) for name, kind in declared.items()])

    def scalar_row(self, query: str) -> dict[str, Any]:
        return self._read(query).collect()[0].asDict()

    def _read(self, query: str, partitioning: Partitioning | None = None) -> DataFrame:
        try:
            return self.reader.read(query, partitioning)
        except (UnreadableColumn, MissingDriver) as exc:  # say which control row needs the fix
            raise type(exc)(f"{self.row.control_key} (source table {self.label}): {exc}") from None
        except Exception as exc:
            if not lost_connection(exc):
                raise
            raise SourceUnreachable(
                f"{self.row.control_key}: the source database (dbconfig {self.row.db_config_key}, "
                f"{self.dialect.name}) could not be reached while reading {self.label}: {said(exc)}. "
                "The load's result is not recorded; run it again once the database answers"
            ) from exc


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
