from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from include.dataloader.dialects.base import (
    ColumnInfo,
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


class NumberDoesNotFit(ValueError):
    """An unconstrained NUMBER's value is too wide for decimal(38,10), the type it loads as."""


# decimal(38,10): what decimal_or_integer declares for a NUMBER without precision
UNCONSTRAINED = (38, 10)
_QUANTUM = Decimal(1).scaleb(-UNCONSTRAINED[1])
_LIMIT = Decimal(10) ** (UNCONSTRAINED[0] - UNCONSTRAINED[1])
# wide enough for any NUMBER (40 digits, exponents -130..125) at scale 10; ties away from zero, as
# Oracle's ROUND(x, 10) and Spark's JDBC reader (BigDecimal.setScale(10, HALF_UP)) round
_CONTEXT = Context(prec=200, rounding=ROUND_HALF_UP)


def exact_decimals(text: pa.Array, *, table: str, column: str) -> pa.Array:
    """TO_CHAR(n, 'TM9') texts as decimal128(38,10), rounded half away from zero to 10 fractional
    digits; a value of more than 28 integer digits is refused (NumberDoesNotFit), never truncated."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:  # Arrow's cast is exact or fails (a value to round, too wide, or in scientific notation)
        return pc.cast(text, pa.decimal128(*UNCONSTRAINED))
    except pa.ArrowInvalid:
        pass  # value by value, ten times slower: round or refuse
    values = []
    for item in text.to_pylist():
        if item is None:
            values.append(None)
            continue
        try:
            value = _CONTEXT.quantize(Decimal(item), _QUANTUM)
        except InvalidOperation:
            value = None
        if value is None or value.copy_abs() >= _LIMIT:  # copy_abs: exact, abs() would round to 28 digits
            raise NumberDoesNotFit(
                f"oracle table {table}, column {column!r}: the value {item} does not fit decimal(38,10), the "
                "type a NUMBER declared without precision loads as (at most 28 integer digits); declare the "
                "column's precision at the source (NUMBER(p,s) loads as decimal(p,s)), or read the table "
                "through a view that selects the column as such a NUMBER or as text"
            )
        values.append(value)
    return pa.array(values, pa.decimal128(*UNCONSTRAINED))


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

    def driver_inexact(self, col: ColumnInfo) -> bool:
        # python-oracledb's data frames hand a NUMBER without precision over as a double (15-17 digits)
        return self.base_type(col.source_type) == "number" and col.precision is None

    def exact_text(self, column: exp.Expression) -> exp.Expression:
        # TM9: every digit, no padding; the NLS parameter fixes the decimal point whatever the session's
        return exp.ToChar(
            this=column,
            format=exp.Literal.string("TM9"),
            nlsparam=exp.Literal.string("NLS_NUMERIC_CHARACTERS='.,'"),
        )

    def _exact_text_columns(self, query: str) -> tuple[str, list[str]]:
        """The query's table and the columns it selects as ``exact_text`` (by their alias)."""
        try:
            select = sqlglot.parse_one(query, read=self.sqlglot)
        except sqlglot.errors.ParseError:
            return "", []
        if not isinstance(select, exp.Select):
            return "", []
        names = [
            p.alias
            for p in select.expressions
            if isinstance(p, exp.Alias) and p.this == self.exact_text(exp.column(p.alias, quoted=True))
        ]
        table = select.find(exp.Table)
        return (table.sql(dialect=self.sqlglot) if table else ""), names

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
        # fetch_decimals: NUMBER(p, s) arrives as an exact decimal, not a double; a NUMBER without
        # precision still arrives as a double, so the query selects it as exact text (driver_inexact)
        table, exact = self._exact_text_columns(query)
        with self.connect(params) as conn:
            batches = arrow_batches_of(conn.fetch_df_batches(query, size=batch_rows, fetch_decimals=True), batch_rows)
            for batch in batches:
                for name in exact:
                    i = batch.schema.get_field_index(name)
                    decimals = exact_decimals(batch.column(i), table=table, column=name)
                    batch = batch.set_column(i, name, decimals)
                yield batch
