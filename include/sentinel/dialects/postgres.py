"""PostgreSQL: the canonical row, its hash, chunk checksums, key boundaries, row fetches and literals.

Identifiers are quoted with sqlglot; key values are always bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from include.sentinel.dialects.base import SentinelDialect

NUMERIC = ("numeric", "decimal", "smallint", "integer", "bigint", "real", "double precision")
Key = tuple[Any, ...]


def ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="postgres")


def table_ref(schema: str | None, table: str) -> str:
    return f"{ident(schema)}.{ident(table)}" if schema else ident(table)


class PostgresSentinel(SentinelDialect):
    name = "postgresql"
    ident = staticmethod(ident)
    table_ref = staticmethod(table_ref)

    def __init__(self, *, timestamp_precision: int = 6):
        self.timestamp_precision = timestamp_precision

    def columns_query(self, schema: str | None, table: str) -> tuple[str, dict[str, Any]]:
        return (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = coalesce(%(schema)s, current_schema()) AND table_name = %(table)s "
            "ORDER BY ordinal_position",
            {"schema": schema, "table": table},
        )

    def canonical(self, column: str, data_type: str) -> str:
        """The column's value as text that compares equal across databases; NULL stays distinct from ''
        and from the text 'NULL' because every value is length-prefixed and NULL has no length."""
        col = ident(column)
        if data_type in NUMERIC:
            text = f"trim_scale({col}::numeric)::text"
        elif data_type.startswith("timestamp"):
            digits = self.timestamp_precision
            fraction = ".US" if digits >= 6 else ("" if digits == 0 else ".MS")
            zone = " AT TIME ZONE 'UTC'" if "with time zone" in data_type else ""
            text = f"to_char({col}{zone}, 'YYYY-MM-DD\"T\"HH24:MI:SS{fraction}')"
        elif data_type == "date":
            text = f"to_char({col}, 'YYYY-MM-DD')"
        elif data_type == "character":
            text = f"rtrim({col})"  # CHAR padding is not data
        elif data_type == "bytea":
            text = f"md5({col})"
        else:
            text = f"{col}::text"
        return f"CASE WHEN {col} IS NULL THEN 'N' ELSE length({text}) || ':' || {text} END"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        return "md5(" + " || '|' || ".join(self.canonical(c, t) for c, t in columns) + ")"

    def key_range(self, pk: Sequence[str], lower: Key | None, upper: Key | None) -> tuple[str, dict[str, Any]]:
        """``lower <= key < upper`` as SQL with bound parameters (row comparison for composite keys)."""
        keys = "(" + ", ".join(ident(k) for k in pk) + ")"
        parts, params = [], {}
        for name, bound, op in (("lo", lower, ">="), ("hi", upper, "<")):
            if bound is not None:
                names = [f"{name}{i}" for i in range(len(pk))]
                parts.append(f"{keys} {op} (" + ", ".join(f"%({n})s" for n in names) + ")")
                params.update(zip(names, bound, strict=True))
        return (" AND ".join(parts) or "TRUE"), params

    def boundaries_query(self, table: str, pk: Sequence[str], where: str | None, chunk_size: int):
        """The first key of every chunk: one ordered scan of the key, no OFFSET."""
        keys = ", ".join(ident(k) for k in pk)
        filtered = f" WHERE {where}" if where else ""
        return (
            f"SELECT {keys} FROM (SELECT {keys}, row_number() OVER (ORDER BY {keys}) AS rn FROM {table}{filtered}) s "
            f"WHERE (rn - 1) %% %(chunk)s = 0 ORDER BY {keys}",
            {"chunk": chunk_size},
        )

    def checksum_sql(self, table: str, columns, pk, lower, upper, where) -> tuple[str, dict[str, Any]]:
        condition, params = self._range(pk, lower, upper, where)
        return (
            f"SELECT count(*), coalesce(sum(('x' || substr({self.row_hash(columns)}, 1, 15))::bit(60)::bigint), 0) "
            f"FROM {table} WHERE {condition}",
            params,
        )

    def segment_checksums_sql(self, table: str, columns, pk, lower, upper, where, thresholds):
        """Count and hash sum per segment of a chunk, in one scan: segment i holds the keys from
        ``thresholds[i-1]`` (the chunk's lower bound for i = 0) up to ``thresholds[i]``. Single-column
        keys only (width_bucket takes one value)."""
        condition, params = self._range(pk, lower, upper, where)
        part = f"('x' || substr({self.row_hash(columns)}, 1, 15))::bit(60)::bigint"
        return (
            f"SELECT width_bucket({ident(pk[0])}, %(thresholds)s), count(*), sum({part}) FROM {table} "
            f"WHERE {condition} GROUP BY 1",
            params | {"thresholds": [t[0] for t in thresholds]},
        )

    def rows_by_key_query(self, table: str, select: str, pk: Sequence[str], keys: Sequence[Key]):
        columns = "(" + ", ".join(ident(k) for k in pk) + ")"
        placeholders = ", ".join("(" + ", ".join(["%s"] * len(pk)) + ")" for _ in keys)
        return f"SELECT {select} FROM {table} WHERE {columns} IN ({placeholders})", [v for key in keys for v in key]

    # -- sync SQL -----------------------------------------------------------------------------------

    def literal(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int | Decimal | float):
            return exp.Literal.number(value).sql(dialect="postgres")
        if isinstance(value, datetime):
            kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
            return f"CAST({exp.Literal.string(value.isoformat(sep=' ')).sql(dialect='postgres')} AS {kind})"
        if isinstance(value, date):
            return f"CAST({exp.Literal.string(value.isoformat()).sql(dialect='postgres')} AS DATE)"
        if isinstance(value, bytes | memoryview):
            return f"decode('{bytes(value).hex()}', 'hex')"
        return exp.Literal.string(str(value)).sql(dialect="postgres")
