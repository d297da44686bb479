"""Reading a source query into a Spark DataFrame.

- ``SparkSourceReader``: Spark's own JDBC (or Snowflake) reader, with partitioned reads; on Databricks.
- ``ArrowSourceReader``: a native Python driver that returns Arrow, handed to Spark; the local engine,
  whose Spark (Sail) cannot load JDBC drivers. PostgreSQL uses ADBC (libpq, COPY binary underneath).

Both return the columns as the driver types them; ``source.py`` casts them to the declared types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from include.dataloader.dialects import ConnectionParams, SourceDialect

ARROW_SLICE_ROWS = 250_000  # one Spark Connect message per slice stays well under the gRPC limit


class SourceReader(Protocol):
    num_partitions: int  # 1: the reader cannot split a read

    def read(self, query: str, partitioning: Partitioning | None = None) -> DataFrame: ...


@dataclass(frozen=True)
class Partitioning:
    """Parallel JDBC reads: Spark splits [lower, upper] of ``column`` into ``num_partitions`` ranges."""

    column: str
    lower: int
    upper: int
    num_partitions: int


class SparkSourceReader:
    """:param fetch_size: rows per round trip; the drivers' defaults (10 for Oracle) are far too small.
    :param num_partitions: parallel connections for a large read split on an integer key."""

    def __init__(
        self,
        spark: SparkSession,
        dialect: SourceDialect,
        params: ConnectionParams,
        *,
        fetch_size: int = 10_000,
        num_partitions: int = 8,
    ):
        self.spark = spark
        self.dialect = dialect
        self.params = params
        self.fetch_size = fetch_size
        self.num_partitions = num_partitions

    def options(self, query: str, partitioning: Partitioning | None = None) -> dict[str, str]:
        options = self.dialect.spark_read_options(self.params)
        if self.dialect.spark_format == "jdbc":
            options["fetchsize"] = str(self.fetch_size)
            if self.params.user:
                options["user"] = self.params.user
            if self.params.password:
                options["password"] = self.params.password
        else:
            options.update({"sfUser": self.params.user or "", "sfPassword": self.params.password or ""})
        if partitioning is None:
            options["query"] = query
        else:
            # Spark refuses `query` together with partitionColumn: the query becomes a derived table
            options["dbtable"] = f"({query}) src"
            options.update(
                partitionColumn=partitioning.column,
                lowerBound=str(partitioning.lower),
                upperBound=str(partitioning.upper),
                numPartitions=str(partitioning.num_partitions),
            )
        return options

    def read(self, query: str, partitioning: Partitioning | None = None) -> DataFrame:
        return self.spark.read.format(self.dialect.spark_format).options(**self.options(query, partitioning)).load()


class ArrowSourceReader:
    """:param fetch: runs a query on the source and returns an Arrow table."""

    num_partitions = 1

    def __init__(self, spark: SparkSession, fetch: Callable[[str], pa.Table]):
        self.spark = spark
        self.fetch = fetch

    def read(self, query: str, partitioning: Partitioning | None = None) -> DataFrame:
        table = _plain_arrow(self.fetch(query))
        if table.num_rows == 0:  # Spark cannot infer a schema from no rows: hand it the Arrow schema
            return self.spark.createDataFrame([], schema=from_arrow_schema(table.schema))
        if table.num_rows <= ARROW_SLICE_ROWS:
            return self.spark.createDataFrame(table)
        parts = [
            self.spark.createDataFrame(table.slice(offset, ARROW_SLICE_ROWS))
            for offset in range(0, table.num_rows, ARROW_SLICE_ROWS)
        ]
        result = parts[0]
        for part in parts[1:]:
            result = result.unionAll(part)
        return result


def _plain_arrow(table: pa.Table) -> pa.Table:
    """Extension types (ADBC's PostgreSQL numeric arrives as an opaque string) become their storage type;
    a uuid becomes its canonical text (its storage is 16 raw bytes, which are not text)."""
    columns = []
    for column in table.columns:
        if isinstance(column.type, pa.UuidType):
            column = pa.chunked_array(
                [pa.array([None if u is None else str(u) for u in c.to_pylist()], pa.string()) for c in column.chunks],
                type=pa.string(),
            )
        elif isinstance(column.type, pa.BaseExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], type=column.type.storage_type)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def postgres_fetch(params: ConnectionParams) -> Callable[[str], pa.Table]:
    """ADBC for PostgreSQL: libpq underneath, so unix sockets and every libpq option work."""
    import adbc_driver_postgresql.dbapi as adbc
    from psycopg.conninfo import make_conninfo

    uri = params.url or make_conninfo(
        "",
        host=params.host,
        port=params.port,
        dbname=params.database,
        user=params.user,
        password=params.password,
    )

    def fetch(query: str) -> pa.Table:
        with adbc.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(query)
            return cur.fetch_arrow_table()

    return fetch


class NoLocalReader(RuntimeError):
    pass


def local_reader(spark: SparkSession, dialect: SourceDialect, params: ConnectionParams) -> SourceReader:
    if dialect.name == "postgresql":
        return ArrowSourceReader(spark, postgres_fetch(params))
    raise NoLocalReader(
        f"{dialect.name} sources have no reader on the local engine; run this table on Databricks "
        "(set execution_target to databricks) or use a PostgreSQL source locally"
    )
