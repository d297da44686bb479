"""Oracle: the same queries as PostgreSQL's, in Oracle's terms.

- Oracle compares row values only with = and IN, so ``(a, b) >= (x, y)`` is expanded.
- Binds are named (``:lo0``); literals in the sync file carry explicit formats (TO_TIMESTAMP, TO_DATE), so
  they do not depend on the session's NLS settings.
- Every session sorts and compares in binary and uses '.' as the decimal mark: chunk boundaries come from
  ORDER BY (NLS_SORT) while ranges are checked with < (NLS_COMP); they must agree, and TO_CHAR of a number
  must not depend on the DBA's NLS_TERRITORY.
- Columns' declared collations (12.2 and later) are read so that the comparator can refuse keys that sort
  differently on the two sides.
- The canonical row must fit VARCHAR2 (4000 bytes, or 32767 with MAX_STRING_SIZE=EXTENDED); LOBs are
  hashed with DBMS_CRYPTO (needs EXECUTE on it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from include.sentinel.dialects.base import Params, SentinelDialect, scientific

NUMERIC = ("NUMBER", "INTEGER")
FLOATS = ("FLOAT", "BINARY_FLOAT", "BINARY_DOUBLE")
LOBS = ("CLOB", "NCLOB", "BLOB")
MAX_LITERAL = 4000  # bytes in one Oracle string literal


class OracleSentinel(SentinelDialect):
    name = "oracle"
    sqlglot_dialect = "oracle"
    folds_to_upper = True
    row_values = False
    session_setup = ("ALTER SESSION SET NLS_SORT = BINARY NLS_COMP = BINARY NLS_NUMERIC_CHARACTERS = '.,'",)
    true_literal, false_literal = "1", "0"
    # a column declared without a collation follows the session's NLS_COMP, set to BINARY above
    binary_collations = frozenset(("USING_NLS_COMP", "BINARY"))

    def bind(self, name: str) -> str:
        return f":{name}"

    def columns_query(self, schema: str | None, table: str) -> tuple[str, Params]:
        owner = "owner = :owner" if schema else "owner = SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')"
        params = {"tab": self.ident(table).strip('"')} | ({"owner": self.ident(schema).strip('"')} if schema else {})
        # a column declared without a collation (USING_NLS_COMP) compares in binary (session_setup)
        return (
            f"SELECT column_name, data_type, collation FROM all_tab_columns WHERE {owner} AND table_name = :tab "
            "ORDER BY column_id",
            params,
        )

    def plain(self, data_type: str) -> bool:
        kind = re.sub(r"\(\d+\)", "", data_type).upper()
        return kind in (*NUMERIC, *FLOATS, *LOBS, "DATE", "RAW") or kind.startswith("TIMESTAMP")

    def text(self, col: str, data_type: str) -> str:
        kind = re.sub(r"\(\d+\)", "", data_type).upper()
        if kind in FLOATS and self.float_digits:
            return f"TO_CHAR({col}, '{scientific(self.float_digits)}')"
        if kind in NUMERIC or kind in FLOATS:
            return f"TO_CHAR({col}, 'TM9')"
        if kind == "DATE":
            return f"TO_CHAR({col}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        if kind.startswith("TIMESTAMP"):
            fraction = f".FF{self.timestamp_precision}" if self.timestamp_precision else ""
            value = f"SYS_EXTRACT_UTC({col})" if "TIME ZONE" in kind else col
            return f"TO_CHAR({value}, 'YYYY-MM-DD\"T\"HH24:MI:SS{fraction}')"
        if kind in ("CHAR", "NCHAR"):
            return f"RTRIM({col})"
        if kind in LOBS:
            return f"RAWTOHEX(DBMS_CRYPTO.HASH({col}, 2))"
        if kind == "RAW":
            return f"RAWTOHEX({col})"
        return col

    def kind(self, data_type: str) -> str:
        kind = re.sub(r"\(\d+\)", "", data_type).upper()
        if kind in NUMERIC:
            return "decimal"  # NUMBER holds whole numbers and decimals alike: both print as decimals
        if kind in FLOATS:
            return "float"
        if kind == "DATE" or kind.startswith("TIMESTAMP"):  # a DATE holds a time of day too
            return "timestamptz" if "TIME ZONE" in kind else "timestamp"
        return "binary" if kind in ("RAW", "BLOB") else "text"

    def portable_text(self, col: str, kind: str, data_type: str) -> str:
        if kind == "decimal":  # TM9 drops the zero before the point: '.5', '-.5'
            return f"REGEXP_REPLACE(TO_CHAR({col}, 'TM9'), '^(-?)\\.', '\\10.')"
        if kind == "float":
            sci = f"LOWER(LTRIM(TO_CHAR(TO_BINARY_DOUBLE({col}), '{scientific(self.float_digits)}')))"
            return f"CASE WHEN {col} = 0 THEN '0' ELSE {sci} END"
        if kind in ("timestamp", "timestamptz"):
            value = f"SYS_EXTRACT_UTC({col})" if kind == "timestamptz" else f"CAST({col} AS TIMESTAMP)"
            since = f"({value} - TIMESTAMP '1970-01-01 00:00:00')"  # a day-to-second interval, exact
            micros = (
                f"EXTRACT(DAY FROM {since}) * 86400000000 + EXTRACT(HOUR FROM {since}) * 3600000000 + "
                f"EXTRACT(MINUTE FROM {since}) * 60000000 + EXTRACT(SECOND FROM {since}) * 1000000"
            )
            return f"TO_CHAR(TRUNC(({micros}) / {10 ** (6 - self.timestamp_precision)}), 'TM9')"
        if kind == "binary":  # STANDARD_HASH takes no BLOB
            return f"LOWER(RAWTOHEX(DBMS_CRYPTO.HASH({col}, 2)))" if "BLOB" in data_type.upper() else self.md5_hex(col)
        return self.text(col, data_type)

    def md5_hex(self, text: str) -> str:
        return f"LOWER(RAWTOHEX(STANDARD_HASH({text}, 'MD5')))"

    def hex_prefix_number(self, hex_text: str) -> str:
        return f"TO_NUMBER(UPPER(SUBSTR({hex_text}, 1, 15)), 'XXXXXXXXXXXXXXX')"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        return f"RAWTOHEX(STANDARD_HASH({self.row_text(columns)}, 'MD5'))"

    def hash_number(self, columns: Sequence[tuple[str, str]]) -> str:
        return f"TO_NUMBER(SUBSTR({self.row_hash(columns)}, 1, 15), 'XXXXXXXXXXXXXXX')"

    def timestamp_literal(self, value: datetime) -> str:
        text = self.string(value.isoformat(sep=" ", timespec="microseconds"))
        if value.tzinfo is not None:
            return f"TO_TIMESTAMP_TZ({text}, 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM')"
        return f"TO_TIMESTAMP({text}, 'YYYY-MM-DD HH24:MI:SS.FF6')"

    def date_literal(self, value: date) -> str:
        return f"TO_DATE({self.string(value.isoformat())}, 'YYYY-MM-DD')"

    def bytes_literal(self, value: bytes) -> str:
        return f"HEXTORAW('{value.hex().upper()}')"

    def text_literal(self, text: str) -> str:
        if len(text.encode()) <= MAX_LITERAL:
            return self.string(text)
        # a literal holds at most 4000 bytes: long text is built from CLOB pieces
        pieces = [text[i : i + 1000] for i in range(0, len(text), 1000)]
        return " || ".join(f"TO_CLOB({self.string(p)})" for p in pieces)
