"""Reading a source query into a Spark DataFrame.

- ``SparkSourceReader``: Spark's own JDBC (or Snowflake) reader, with partitioned reads; on Databricks.
- ``ArrowSourceReader``: a native Python driver that streams Arrow batches (each dialect's
  ``arrow_batches``), staged as Parquet files that Spark reads lazily; the local engine, whose Spark
  (Sail) cannot load JDBC drivers.

Both return the columns as the driver types them; ``source.py`` casts them to the declared types.
"""

from __future__ import annotations

import functools
import itertools
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from include.dataloader.dialects import ConnectionParams, SourceDialect
from include.dataloader.staging import FILE_ROWS, ExtractStaging, write_parquet

log = logging.getLogger(__name__)

BATCH_ROWS = 100_000  # rows per driver fetch: a few MB for narrow tables, bounded for wide ones
INLINE_BYTES = 8 * 1024 * 1024  # above this a result is staged as files (gRPC's limit is 128 MiB)


class SourceReader(Protocol):
    num_partitions: int  # 1: the reader cannot split a read
    native_driver: bool  # the dialect's Python driver (arrow_batches), not Spark's own reader

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

    native_driver = False

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
    """A native driver's Arrow batches, handed to Spark; the local engine.

    A small result (at most ``inline_bytes``) travels to Spark as a local relation. A larger one is
    written batch by batch to Parquet files in the run's staging folder, and Spark reads those lazily:
    memory holds one batch, whatever the table's size, and no gRPC message grows with it.

    :param batches: runs a query on the source and yields its rows as Arrow record batches.
    :param staging: the run's staging folder (removed when the load ends).
    :param dialect: the source's dialect name, for errors.
    """

    num_partitions = 1
    native_driver = True

    def __init__(
        self,
        spark: SparkSession,
        batches: Callable[[str], Iterable[pa.RecordBatch]],
        staging: ExtractStaging,
        *,
        dialect: str = "source",
        inline_bytes: int = INLINE_BYTES,
        file_rows: int = FILE_ROWS,
    ):
        self.spark = spark
        self.batches = batches
        self.staging = staging
        self.dialect = dialect
        self.inline_bytes = inline_bytes
        self.file_rows = file_rows

    def read(self, query: str, partitioning: Partitioning | None = None) -> DataFrame:
        batches = self.batches(query)
        try:
            return self._read(query, (_plain_batch(b) for b in batches))
        finally:
            if hasattr(batches, "close"):  # a generator: ends the driver's cursor and connection
                batches.close()

    def _read(self, query: str, stream: Iterator[pa.RecordBatch]) -> DataFrame:
        head: list[pa.RecordBatch] = []
        size = 0
        for batch in stream:
            head.append(batch)
            size += batch.nbytes
            if size > self.inline_bytes:
                return self._staged(head, stream)
        if not head:
            raise EmptyResultWithoutSchema(
                f"{self.dialect}: the driver returned no batch (not even its schema): {query}"
            )
        table = pa.Table.from_batches(head)
        table = table.cast(stageable_schema(table.schema, self.dialect), safe=False)
        if table.num_rows == 0:  # Spark cannot infer a schema from no rows: hand it the Arrow schema
            return self.spark.createDataFrame([], schema=from_arrow_schema(table.schema))
        return self.spark.createDataFrame(table)

    def _staged(self, head: list[pa.RecordBatch], rest: Iterator[pa.RecordBatch]) -> DataFrame:
        schema = stageable_schema(head[0].schema, self.dialect)
        folder = self.staging.new_read()
        batches = (b.cast(schema, safe=False) for b in itertools.chain(head, rest))
        try:
            rows = write_parquet(folder, schema, batches, file_rows=self.file_rows)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # a failed read leaves no files behind
            raise
        log.info("%s: staged %d rows in %s", self.dialect, rows, folder)
        return self.spark.read.parquet(str(folder))

    def close(self) -> None:
        self.staging.close()


class EmptyResultWithoutSchema(RuntimeError):
    pass


class UnreadableColumn(TypeError):
    """A column arrives in an Arrow type that Spark cannot read from the staged files."""


def stageable_schema(schema: pa.Schema, dialect: str) -> pa.Schema:
    """The Arrow types Spark reads losslessly; the declared types are cast afterwards (``source.py``)."""
    return pa.schema([pa.field(f.name, _stageable(f, dialect), nullable=True) for f in schema])


_UNSIGNED = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),
}


def _stageable(field: pa.Field, dialect: str) -> pa.DataType:
    kind = field.type
    if pa.types.is_dictionary(kind):  # LowCardinality, Enum: the values matter, not the codes
        kind = kind.value_type
    if kind in _UNSIGNED:  # Spark has no unsigned integers
        return _UNSIGNED[kind]
    if pa.types.is_timestamp(kind) and kind.unit != "us":  # Spark keeps microseconds (ns truncated, as JDBC)
        return pa.timestamp("us", kind.tz)
    if pa.types.is_time(kind):  # declared as string in every dialect's TYPES
        return pa.string()
    if pa.types.is_fixed_size_binary(kind):
        return pa.binary()
    if pa.types.is_null(kind):  # a column of NULLs only: any type casts from NULL
        return pa.string()
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    if pa.types.is_decimal256(kind) and kind.precision <= 38:
        return pa.decimal128(kind.precision, kind.scale)
    if pa.types.is_nested(kind) or pa.types.is_duration(kind) or pa.types.is_interval(kind):
        raise UnreadableColumn(
            f"{dialect} column {field.name!r} arrives as Arrow {kind}, which the local engine cannot stage; "
            "select it as text in a view at the source (or exclude it), or run the table on Databricks "
            "(execution_target: databricks)"
        )
    return kind


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


def _plain_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    table = _plain_arrow(pa.Table.from_batches([batch]))
    return table.to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], schema=table.schema)


def local_reader(
    spark: SparkSession,
    dialect: SourceDialect,
    params: ConnectionParams,
    staging: ExtractStaging | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    **options: Any,
) -> ArrowSourceReader:
    """The dialect's native driver, read in batches of ``batch_rows``, staged under ``staging`` (by
    default a folder in the system's temporary directory)."""
    if staging is None:
        staging = ExtractStaging(Path(tempfile.gettempdir()) / "dataloader-extract")
    return ArrowSourceReader(
        spark,
        functools.partial(dialect.arrow_batches, params, batch_rows=batch_rows),
        staging,
        dialect=dialect.name,
        **options,
    )
