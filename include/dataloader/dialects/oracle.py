from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from include.dataloader.dialects.base import (
    ConnectionParams,
    SourceDialect,
    arrow_batches_of,
    decimal_or_integer,
    require,
)

if TYPE_CHECKING:
    import pyarrow as pa


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


class OracleDialect(SourceDialect):
    name = "oracle"
    sqlglot = "oracle"
    jdbc_driver = "oracle.jdbc.OracleDriver"
    default_port = 1521
    TYPES = {
        "number": decimal_or_integer,
        "float": "double",
        "binary_float": "float",
        "binary_double": "double",
        "varchar2": "string",
        "nvarchar2": "string",
        "char": "string",
        "nchar": "string",
        "clob": "string",
        "nclob": "string",
        "long": "string",
        "date": "timestamp_ntz",  # an Oracle DATE carries a time of day
        "timestamp": "timestamp_ntz",
        "timestamp with time zone": "timestamp",
        "timestamp with local time zone": "timestamp",
        "raw": "binary",
        "blob": "binary",
    }

    def base_type(self, source_type: str) -> str:
        # ALL_TAB_COLUMNS says TIMESTAMP(6) WITH TIME ZONE: the precision sits mid-name
        return " ".join(super().base_type(source_type).split())

    # Explicit formats: CAST and bare strings would depend on the session's NLS settings.
    def date_literal(self, value: date) -> exp.Expression:
        return _fn("TO_DATE", exp.Literal.string(value.isoformat()), exp.Literal.string("YYYY-MM-DD"))

    def timestamp_literal(self, value: datetime, *, with_time_zone: bool) -> exp.Expression:
        text = self._iso(value, with_time_zone=with_time_zone)
        if with_time_zone:
            fmt = "YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM"
            return _fn("TO_TIMESTAMP_TZ", exp.Literal.string(text), exp.Literal.string(fmt))
        return _fn("TO_TIMESTAMP", exp.Literal.string(text), exp.Literal.string("YYYY-MM-DD HH24:MI:SS.FF6"))

    def columns_query(self, schema: str | None, table: str) -> str:
        query = (
            exp.select(
                exp.column("column_name").as_("column_name"),
                exp.column("data_type").as_("data_type"),
                exp.column("data_precision").as_("numeric_precision"),
                exp.column("data_scale").as_("numeric_scale"),
            )
            .from_("all_tab_columns")
            .where(exp.column("table_name").eq(exp.Literal.string(table)))
            .order_by("column_id")
        )
        if schema:
            query = query.where(exp.column("owner").eq(exp.Literal.string(schema)))
        return query.sql(dialect=self.sqlglot)

    def jdbc_url(self, params: ConnectionParams) -> str:
        # the database is a service name
        return f"jdbc:oracle:thin:@//{params.host}:{params.port or self.default_port}/{params.database}"

    def connect(self, params: ConnectionParams) -> Any:
        # thin mode: pure Python, no Oracle client libraries; the database is a service name
        oracledb = require("oracledb", "oracledb", self.name)
        dsn = f"{params.host}:{params.port or self.default_port}/{params.database}"
        return oracledb.connect(user=params.user, password=params.password, dsn=dsn, **dict(params.options or {}))

    def arrow_batches(
        self, params: ConnectionParams, query: str, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        # fetch_decimals: NUMBER(p, s) arrives as an exact decimal, not a double
        with self.connect(params) as conn:
            yield from arrow_batches_of(conn.fetch_df_batches(query, size=batch_rows, fetch_decimals=True), batch_rows)
