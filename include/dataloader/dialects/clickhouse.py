from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlglot import exp

from include.dataloader.dialects.base import ColumnInfo, ConnectionParams, SourceDialect, exact_decimal


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

    def connect(self, params: ConnectionParams) -> Any:
        from clickhouse_connect import dbapi

        return dbapi.connect(
            host=params.host,
            port=params.port or self.default_port,
            username=params.user or "default",
            password=params.password or "",
            database=params.database or "default",
            **dict(params.options or {}),
        )
