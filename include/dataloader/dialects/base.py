"""What differs between source databases: literals, declared types, catalog queries, JDBC URLs.

One class per dialect; the differences are maps and small methods that subclasses override, the way
sqlglot's dialects are written. The queries themselves are built once, in ``queries.py``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class ColumnInfo:
    """A source column as the source's catalog declares it."""

    name: str
    source_type: str
    precision: int | None = None
    scale: int | None = None


@dataclass(frozen=True)
class ConnectionParams:
    """Resolved connection parameters of a source database (secrets included: never log this)."""

    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = None
    url: str | None = None
    options: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        return f"ConnectionParams(host={self.host!r}, port={self.port!r}, database={self.database!r}, password=***)"


@dataclass(frozen=True)
class AsText:
    """A type read through the source's own text form (the query casts it to the dialect's text type):
    for types no driver hands over as a value Delta can hold (intervals, network addresses, geometry,
    arrays, enums, ...). The target column is a string equal to what the source prints, or ``spark``
    when that text casts to it exactly."""

    spark: str = "string"


TEXT = AsText()
TypeRule = str | Callable[[ColumnInfo], str] | AsText


def decimal_or_integer(col: ColumnInfo) -> str:
    """NUMBER/NUMERIC(p, s): whole numbers of up to 18 digits become integers, the rest decimals."""
    if col.precision is None:
        return "decimal(38,10)"  # unconstrained: the widest exact type Delta has, with a usable scale
    scale = col.scale or 0
    if scale == 0 and col.precision <= 9:
        return "int"
    if scale == 0 and col.precision <= 18:
        return "bigint"
    return f"decimal({min(col.precision, 38)},{scale})"


def exact_decimal(col: ColumnInfo) -> str:
    if col.precision is None:
        return "decimal(38,10)"
    return f"decimal({min(col.precision, 38)},{col.scale or 0})"


class UnsupportedSourceType(ValueError):
    pass


class MissingDriver(ImportError):
    """A source's Python driver is not installed; the message names the package."""


def require(module: str, package: str, dialect: str, why: str = "") -> ModuleType:
    """Import a driver lazily: only the dialects a deployment reads need their packages."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDriver(
            f"{dialect} sources need the Python package {package} on the local engine: "
            f"pip install {package}{why or ' (the version pinned in requirements.txt)'}"
        ) from None


def arrow_batches_of(tables: Iterable[Any], rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of at most ``rows`` rows from a driver's stream of Arrow tables or batches, and
    one empty batch when there are no rows, so that an empty result still has a schema."""
    import pyarrow as pa

    schema, yielded = getattr(tables, "schema", None), False  # a RecordBatchReader knows it up front
    for table in tables:
        if not isinstance(table, (pa.Table, pa.RecordBatch)):
            table = pa.table(table)  # an Arrow PyCapsule stream (oracledb's DataFrame)
        schema = table.schema
        batches = table.to_batches() if isinstance(table, pa.Table) else [table]
        for batch in batches:
            for offset in range(0, batch.num_rows, rows):
                yielded = True
                yield batch.slice(offset, rows)
    if schema is not None and not yielded:
        yield pa.RecordBatch.from_pylist([], schema=schema)


class SourceDialect:
    name: ClassVar[str]  # db_type in table_control_dbconfig
    sqlglot: ClassVar[str]  # sqlglot's dialect name
    jdbc_driver: ClassVar[str | None] = None
    default_port: ClassVar[int | None] = None
    # declared type (lower case, without length/precision) -> Spark SQL type, or TEXT (read as text)
    TYPES: ClassVar[Mapping[str, TypeRule]] = {}
    TEXT_TYPE: ClassVar[str | None] = None  # what a TEXT column is cast to in the query
    # format of timestamp watermarks: always ISO, microseconds, as Spark stores them
    TIMESTAMP_FORMAT: ClassVar[str] = "%Y-%m-%d %H:%M:%S.%f"

    # -- literals -----------------------------------------------------------------------------------

    def literal(self, value: Any, cursor_type: str, *, with_time_zone: bool = False) -> exp.Expression:
        """``value`` as a typed literal of the cursor's type, at full precision."""
        if cursor_type == "integer":
            return exp.Literal.number(int(value))
        if cursor_type == "date":
            return self.date_literal(value if isinstance(value, date) else date.fromisoformat(str(value)[:10]))
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if with_time_zone and moment.tzinfo is None:
            # the loader's clock is UTC: a literal without its offset would be read in the source
            # session's time zone, while the target side compares in UTC
            moment = moment.replace(tzinfo=UTC)
        return self.timestamp_literal(moment, with_time_zone=with_time_zone)

    def date_literal(self, value: date) -> exp.Expression:
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))

    def timestamp_literal(self, value: datetime, *, with_time_zone: bool) -> exp.Expression:
        raise NotImplementedError

    def _iso(self, value: datetime, *, with_time_zone: bool) -> str:
        text = value.strftime(self.TIMESTAMP_FORMAT)
        if with_time_zone:
            text += value.strftime("%z")[:3] + ":" + value.strftime("%z")[3:]
        return text

    # -- types --------------------------------------------------------------------------------------

    def base_type(self, source_type: str) -> str:
        return re.sub(r"\(.*\)", "", source_type).strip().lower()

    def _rule(self, col: ColumnInfo) -> TypeRule:
        rule = self.TYPES.get(self.base_type(col.source_type))
        if rule is None:
            raise UnsupportedSourceType(
                f"column {col.name!r}: {self.name} type {col.source_type!r} has no Spark mapping; "
                "exclude the column or add the type to the dialect's TYPES map"
            )
        return rule

    def spark_type(self, col: ColumnInfo) -> str:
        rule = self._rule(col)
        if isinstance(rule, AsText):
            return rule.spark
        return rule(col) if callable(rule) else rule

    def reads_as_text(self, col: ColumnInfo) -> bool:
        # an unmapped type is not refused here: spark_types refuses it, naming the row and the table
        return isinstance(self.TYPES.get(self.base_type(col.source_type)), AsText)

    def as_text(self, column: exp.Expression) -> exp.Expression:
        """``column`` cast to the dialect's text type (the source's own text form of the value)."""
        return exp.cast(column, exp.DataType.build(self.TEXT_TYPE or "TEXT", dialect=self.sqlglot))

    def driver_inexact(self, col: ColumnInfo) -> bool:
        """Whether the native driver (the local engine) would hand ``col`` over inexactly, so that the
        local engine selects it as ``exact_text`` and the dialect's ``arrow_batches`` turns it back into
        its declared type. Spark's JDBC reader is exact and reads the column itself."""
        return False

    def exact_text(self, column: exp.Expression) -> exp.Expression:
        """``column`` as text that holds its value exactly, whatever the session's settings."""
        raise NotImplementedError(f"{self.name} reads no column as exact text")

    # -- catalog and connection ---------------------------------------------------------------------

    def columns_query(self, schema: str | None, table: str) -> str:
        """Columns of a table as (column_name, data_type, numeric_precision, numeric_scale), in order."""
        query = (
            exp.select("column_name", "data_type", "numeric_precision", "numeric_scale")
            .from_(exp.table_("columns", db="information_schema"))
            .where(exp.column("table_name").eq(exp.Literal.string(table)))
            .order_by("ordinal_position")
        )
        if schema:
            query = query.where(exp.column("table_schema").eq(exp.Literal.string(schema)))
        return query.sql(dialect=self.sqlglot)

    def jdbc_url(self, params: ConnectionParams) -> str:
        raise NotImplementedError

    spark_format: ClassVar[str] = "jdbc"

    def spark_read_options(self, params: ConnectionParams) -> dict[str, str]:
        """Options of ``spark.read.format(spark_format)`` that name the database (credentials separate)."""
        return {"url": self.jdbc_url(params), "driver": self.jdbc_driver or ""}

    # -- native drivers (the local engine, the change sensor) ---------------------------------------

    def connect(self, params: ConnectionParams) -> Any:
        """A DB-API connection (autocommit where the driver has it) through the dialect's Python driver."""
        raise NotImplementedError(f"{self.name} has no driver connection")

    def arrow_batches(
        self, params: ConnectionParams, query: str, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """The query's rows as Arrow record batches of at most ``batch_rows`` rows, streamed from the
        driver (memory holds one batch), ending with an empty batch that carries the schema."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql(dialect=self.sqlglot)
