from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from include.dataloader.dialects.base import (
    ColumnInfo,
    ConnectionParams,
    SourceDialect,
    arrow_batches_of,
    exact_decimal,
    require,
)

if TYPE_CHECKING:
    import pyarrow as pa


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _clickhouse_decimal(col: ColumnInfo) -> str:
    match = re.search(r"decimal\((\d+),\s*(\d+)\)", col.source_type.lower())
    if match:
        return f"decimal({min(int(match[1]), 38)},{match[2]})"
    return exact_decimal(col)


class ClickHouseDialect(SourceDialect):
    name = "clickhouse"
    sqlglot = "clickhouse"
    jdbc_driver = "com.clickhouse.jdbc.ClickHouseDriver"
    default_port = 8123
    TYPES = {
        "int8": "tinyint",
        "int16": "smallint",
        "int32": "int",
        "int64": "bigint",
        "uint8": "smallint",
        "uint16": "int",
        "uint32": "bigint",
        "uint64": "decimal(20,0)",
        "float32": "float",
        "float64": "double",
        "decimal": _clickhouse_decimal,
        "bool": "boolean",
        "string": "string",
        "fixedstring": "string",
        "uuid": "string",
        "enum8": "string",
        "enum16": "string",
        "date": "date",
        "date32": "date",
        "datetime": "timestamp",  # an instant, shown in the column's or server's time zone
        "datetime64": "timestamp",
    }

    def base_type(self, source_type: str) -> str:
        inner = source_type.strip()
        # Nullable(...) and LowCardinality(...) only wrap the type that matters
        while match := re.fullmatch(r"(?i)(nullable|lowcardinality)\((.*)\)", inner):
            inner = match[2].strip()
        return super().base_type(inner)

    def date_literal(self, value: date) -> exp.Expression:
        return _fn("toDate", exp.Literal.string(value.isoformat()))

    def timestamp_literal(self, value: datetime, *, with_time_zone: bool) -> exp.Expression:
        # DateTime64(6): a plain DateTime literal would drop the fraction of a second
        if with_time_zone and value.utcoffset():
            value = (value - value.utcoffset()).replace(tzinfo=None)
        args = [exp.Literal.string(value.strftime(self.TIMESTAMP_FORMAT)), exp.Literal.number(6)]
        if with_time_zone:
            args.append(exp.Literal.string("UTC"))
        return _fn("toDateTime64", *args)

    def columns_query(self, schema: str | None, table: str) -> str:
        query = (
            exp.select(
                exp.column("name").as_("column_name"),
                exp.column("type").as_("data_type"),
                exp.cast(exp.null(), "Nullable(Int32)").as_("numeric_precision"),
                exp.cast(exp.null(), "Nullable(Int32)").as_("numeric_scale"),
            )
            .from_(exp.table_("columns", db="system"))
            .where(exp.column("table").eq(exp.Literal.string(table)))
            .order_by("position")
        )
        if schema:
            query = query.where(exp.column("database").eq(exp.Literal.string(schema)))
        return query.sql(dialect=self.sqlglot)

    def jdbc_url(self, params: ConnectionParams) -> str:
        return f"jdbc:clickhouse://{params.host}:{params.port or self.default_port}/{params.database or 'default'}"

    def _client_args(self, params: ConnectionParams) -> dict[str, Any]:
        if params.url:  # http(s)://user:password@host:port/database, or chdb:///path (embedded ClickHouse)
            return {"dsn": params.url}
        return {
            "host": params.host,
            "port": params.port or self.default_port,
            "username": params.user or "default",
            "password": params.password or "",
            "database": params.database or "default",
            **dict(params.options or {}),  # secure, verify, ... from the connection extra
        }

    def connect(self, params: ConnectionParams) -> Any:
        dbapi = require("clickhouse_connect.dbapi", "clickhouse-connect", self.name)
        return dbapi.connect(**self._client_args(params))

    def arrow_batches(
        self, params: ConnectionParams, query: str, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        # the ArrowStream format, one block (max_block_size rows) at a time; strings as text, not bytes
        clickhouse_connect = require("clickhouse_connect", "clickhouse-connect", self.name)
        client = clickhouse_connect.get_client(**self._client_args(params))
        try:
            # Arrow carries an Enum as its number: the names come from the result's declared types
            enums = {
                name: labels
                for name, kind, *_ in client.query(f"DESCRIBE TABLE ({query})").result_rows
                if (labels := enum_labels(kind))
            }
            stream = client.query_arrow_stream(query, settings={"max_block_size": batch_rows}, use_strings=True)
            found = False
            with stream:
                for batch in arrow_batches_of(stream, batch_rows):
                    found = True
                    yield _with_enum_names(batch, enums) if enums else batch
            if not found:  # an empty stream has no schema; the one-table query of no rows has
                empty = client.query_arrow(query, use_strings=True)
                yield from (_with_enum_names(b, enums) for b in arrow_batches_of([empty], batch_rows))
        finally:
            client.close()


def enum_labels(kind: str) -> dict[int, str] | None:
    """``Enum8('a' = 1, 'b' = 2)`` (possibly Nullable or LowCardinality) -> {1: 'a', 2: 'b'}."""
    match = re.search(r"Enum(?:8|16)\((.*)\)", kind)
    if not match:
        return None
    pairs = re.findall(r"'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)", match[1])
    return {int(value): name.replace("\\'", "'") for name, value in pairs}


def _with_enum_names(batch: pa.RecordBatch, enums: dict[str, dict[int, str]]) -> pa.RecordBatch:
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        labels = enums.get(field.name)
        if labels:
            positions = pc.index_in(column.cast(pa.int64()), value_set=pa.array(list(labels), type=pa.int64()))
            column = pc.take(pa.array(list(labels.values()), type=pa.string()), positions)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
