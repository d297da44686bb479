"""Oracle: the same queries as PostgreSQL's, in Oracle's terms.

- Names: written in lower case (as people write unquoted Oracle names) they are upper-cased, then quoted.
- Key ranges: Oracle compares row values only with = and IN, so ``(a, b) >= (x, y)`` is expanded.
- Binds are named (``:lo0``); literals in the sync file carry explicit formats (TO_TIMESTAMP, TO_DATE), so
  they do not depend on the session's NLS settings.
- The canonical row is compared within Oracle (prod vs DR). Its text must fit VARCHAR2 (4000 bytes, or
  32767 with MAX_STRING_SIZE=EXTENDED); LOBs are hashed with DBMS_CRYPTO (needs EXECUTE on it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from include.sentinel.dialects.base import SentinelDialect

Key = tuple[Any, ...]
NUMERIC = ("NUMBER", "FLOAT", "BINARY_FLOAT", "BINARY_DOUBLE", "INTEGER")
LOBS = ("CLOB", "NCLOB", "BLOB")
MAX_LITERAL = 4000  # bytes in one Oracle string literal


def ident(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$#]*", name):
        name = name.upper()
    return exp.to_identifier(name, quoted=True).sql(dialect="oracle")


def table_ref(schema: str | None, table: str) -> str:
    return f"{ident(schema)}.{ident(table)}" if schema else ident(table)


def _string(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="oracle")


class OracleSentinel(SentinelDialect):
    name = "oracle"
    ident = staticmethod(ident)
    table_ref = staticmethod(table_ref)

    def __init__(self, *, timestamp_precision: int = 6):
        self.timestamp_precision = timestamp_precision

    def columns_query(self, schema: str | None, table: str) -> tuple[str, dict[str, Any]]:
        owner = "owner = :owner" if schema else "owner = SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')"
        params = {"tab": ident(table).strip('"')} | ({"owner": ident(schema).strip('"')} if schema else {})
        return (
            f"SELECT column_name, data_type FROM all_tab_columns WHERE {owner} AND table_name = :tab "
            "ORDER BY column_id",
            params,
        )

    def canonical(self, column: str, data_type: str) -> str:
        col = ident(column)
        kind = re.sub(r"\(\d+\)", "", data_type).upper()
        if kind in NUMERIC:
            text = f"TO_CHAR({col}, 'TM9')"
        elif kind == "DATE":
            text = f"TO_CHAR({col}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        elif kind.startswith("TIMESTAMP"):
            fraction = f".FF{self.timestamp_precision}" if self.timestamp_precision else ""
            value = f"SYS_EXTRACT_UTC({col})" if "TIME ZONE" in kind else col
            text = f"TO_CHAR({value}, 'YYYY-MM-DD\"T\"HH24:MI:SS{fraction}')"
        elif kind in ("CHAR", "NCHAR"):
            text = f"RTRIM({col})"
        elif kind in LOBS:
            text = f"RAWTOHEX(DBMS_CRYPTO.HASH({col}, 2))"
        elif kind == "RAW":
            text = f"RAWTOHEX({col})"
        else:
            text = col
        return f"CASE WHEN {col} IS NULL THEN 'N' ELSE LENGTH({text}) || ':' || {text} END"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        row = " || '|' || ".join(self.canonical(c, t) for c, t in columns)
        return f"RAWTOHEX(STANDARD_HASH({row}, 'MD5'))"

    @staticmethod
    def _compare(pk: Sequence[str], names: Sequence[str], op: str) -> str:
        """``(pk) op (binds)`` for op >= or <, expanded: a > x OR (a = x AND (b op y))."""
        strict = ">" if op == ">=" else "<"
        column, bind = ident(pk[0]), f":{names[0]}"
        if len(pk) == 1:
            return f"{column} {op} {bind}"
        rest = OracleSentinel._compare(pk[1:], names[1:], op)
        return f"({column} {strict} {bind} OR ({column} = {bind} AND {rest}))"

    def key_range(self, pk: Sequence[str], lower: Key | None, upper: Key | None) -> tuple[str, dict[str, Any]]:
        parts, params = [], {}
        for prefix, bound, op in (("lo", lower, ">="), ("hi", upper, "<")):
            if bound is not None:
                names = [f"{prefix}{i}" for i in range(len(pk))]
                parts.append(self._compare(pk, names, op))
                params.update(zip(names, bound, strict=True))
        return (" AND ".join(parts) or "1 = 1"), params

    def boundaries_query(self, table: str, pk: Sequence[str], where: str | None, chunk_size: int):
        keys = ", ".join(ident(k) for k in pk)
        filtered = f" WHERE {where}" if where else ""
        return (
            f"SELECT {keys} FROM (SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {keys}) AS rn FROM {table}{filtered}) "
            f"WHERE MOD(rn - 1, :chunk) = 0 ORDER BY {keys}",
            {"chunk": chunk_size},
        )

    def checksum_sql(self, table: str, columns, pk, lower, upper, where) -> tuple[str, dict[str, Any]]:
        condition, params = self._range(pk, lower, upper, where)
        part = f"TO_NUMBER(SUBSTR({self.row_hash(columns)}, 1, 15), 'XXXXXXXXXXXXXXX')"
        return f"SELECT COUNT(*), NVL(SUM({part}), 0) FROM {table} WHERE {condition}", params

    def rows_by_key_query(self, table: str, select: str, pk: Sequence[str], keys: Sequence[Key]):
        columns = "(" + ", ".join(ident(k) for k in pk) + ")"
        binds, params = [], {}
        for i, key in enumerate(keys):
            names = [f"k{i}_{j}" for j in range(len(pk))]
            binds.append("(" + ", ".join(f":{n}" for n in names) + ")")
            params.update(zip(names, key, strict=True))
        return f"SELECT {select} FROM {table} WHERE {columns} IN ({', '.join(binds)})", params

    # -- sync SQL -------------------------------------------------------------------------------------

    def literal(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int | Decimal | float):
            return exp.Literal.number(value).sql(dialect="oracle")
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                text = value.isoformat(sep=" ", timespec="microseconds")
                return f"TO_TIMESTAMP_TZ({_string(text)}, 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM')"
            text = value.isoformat(sep=" ", timespec="microseconds")
            return f"TO_TIMESTAMP({_string(text)}, 'YYYY-MM-DD HH24:MI:SS.FF6')"
        if isinstance(value, date):
            return f"TO_DATE({_string(value.isoformat())}, 'YYYY-MM-DD')"
        if isinstance(value, bytes | memoryview):
            return f"HEXTORAW('{bytes(value).hex().upper()}')"
        text = str(value)
        if len(text.encode()) <= MAX_LITERAL:
            return _string(text)
        # a literal holds at most 4000 bytes: long text is built from CLOB pieces
        pieces = [text[i : i + 1000] for i in range(0, len(text), 1000)]
        return " || ".join(f"TO_CLOB({_string(p)})" for p in pieces)
