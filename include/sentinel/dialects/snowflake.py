"""Snowflake: the comparator's queries in Snowflake's terms, for snowflake-connector-python
(``%(name)s`` binds, formatted on the client).

- Unquoted names are stored in upper case, as in Oracle.
- The row hash is MD5 as hex; checksums sum ``MD5_NUMBER_UPPER64`` (the first 64 bits as a number) into
  NUMBER(38), which cannot overflow.
- TIMESTAMP_TZ and TIMESTAMP_LTZ are compared in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from include.sentinel.dialects.base import Params, SentinelDialect, scientific

NUMERIC = ("NUMBER", "DECIMAL", "NUMERIC", "INT", "INTEGER", "BIGINT", "SMALLINT")
FLOATS = ("FLOAT", "DOUBLE", "REAL")
SEMI_STRUCTURED = ("VARIANT", "OBJECT", "ARRAY")


class SnowflakeSentinel(SentinelDialect):
    name = "snowflake"
    sqlglot_dialect = "snowflake"
    folds_to_upper = True
    row_values = False
    # no collation (NULL) compares bytes, as does the explicit 'utf8' (and '' )
    binary_collations = frozenset((None, "", "utf8"))

    def columns_query(self, schema: str | None, table: str) -> tuple[str, Params]:
        return (
            "SELECT column_name, data_type, collation_name FROM information_schema.columns "
            "WHERE table_schema = COALESCE(%(schema)s, CURRENT_SCHEMA()) AND table_name = %(table)s "
            "ORDER BY ordinal_position",
            {
                "schema": self.ident(schema).strip('"') if schema else None,
                "table": self.ident(table).strip('"'),
            },
        )

    def plain(self, data_type: str) -> bool:
        kind = re.sub(r"\(.*\)", "", data_type).upper()
        return kind in (*NUMERIC, *FLOATS, "DATE", "BINARY", "BOOLEAN") or kind.startswith("TIMESTAMP")

    def text(self, col: str, data_type: str) -> str:
        kind = re.sub(r"\(.*\)", "", data_type).upper()
        if kind in FLOATS and self.float_digits:
            return f"TO_VARCHAR({col}, '{scientific(self.float_digits)}')"
        if kind in NUMERIC or kind in FLOATS:
            return f"TO_VARCHAR({col})"
        if kind.startswith("TIMESTAMP"):
            value = col if kind == "TIMESTAMP_NTZ" else f"CONVERT_TIMEZONE('UTC', {col})::TIMESTAMP_NTZ"
            fraction = f".FF{self.timestamp_precision}" if self.timestamp_precision else ""
            return f"TO_VARCHAR({value}, 'YYYY-MM-DD\"T\"HH24:MI:SS{fraction}')"
        if kind == "DATE":
            return f"TO_VARCHAR({col}, 'YYYY-MM-DD')"
        if kind == "BINARY":
            return f"MD5({col})"
        if kind in SEMI_STRUCTURED:
            return f"TO_JSON({col})"
        if kind == "TEXT":
            return col
        return f"TO_VARCHAR({col})"

    def kind(self, data_type: str) -> str:
        kind = re.sub(r"\(.*\)", "", data_type).upper()
        if kind in NUMERIC:
            return "decimal"  # every NUMBER, whole or not, prints as a decimal
        if kind in FLOATS:
            return "float"
        if kind.startswith("TIMESTAMP"):
            return "timestamp" if kind == "TIMESTAMP_NTZ" else "timestamptz"
        return {"DATE": "date", "BOOLEAN": "boolean", "BINARY": "binary"}.get(kind, "text")

    def portable_text(self, col: str, kind: str, data_type: str) -> str:
        if kind == "decimal":
            text = f"TO_VARCHAR({col})"
            return f"IFF(CONTAINS({text}, '.'), RTRIM(RTRIM({text}, '0'), '.'), {text})"
        if kind == "float":
            sci = f"LOWER(LTRIM(TO_VARCHAR({col}::DOUBLE, '{scientific(self.float_digits)}')))"
            return f"IFF({col} = 0, '0', {sci})"
        if kind in ("timestamp", "timestamptz"):  # the epoch of an instant is in UTC
            micros = f"DATE_PART(EPOCH_MICROSECOND, {col})"
            digits = self.timestamp_precision
            return f"TO_VARCHAR({micros if digits == 6 else f'TRUNC({micros} / {10 ** (6 - digits)})'})"
        if kind == "boolean":
            return f"IFF({col}, 'true', 'false')"
        return self.text(col, data_type)

    def md5_hex(self, text: str) -> str:
        return f"MD5({text})"

    def hex_prefix_number(self, hex_text: str) -> str:
        return f"TO_NUMBER(UPPER(SUBSTR({hex_text}, 1, 15)), 'XXXXXXXXXXXXXXX')"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        return f"MD5({self.row_text(columns)})"

    def hash_number(self, columns: Sequence[tuple[str, str]]) -> str:
        return f"MD5_NUMBER_UPPER64({self.row_text(columns)})"

    def timestamp_literal(self, value: datetime) -> str:
        text = self.string(value.isoformat(sep=" ", timespec="microseconds"))
        if value.tzinfo is not None:
            return f"TO_TIMESTAMP_TZ({text}, 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM')"
        return f"TO_TIMESTAMP_NTZ({text}, 'YYYY-MM-DD HH24:MI:SS.FF6')"

    def date_literal(self, value: date) -> str:
        return f"TO_DATE({self.string(value.isoformat())}, 'YYYY-MM-DD')"

    def bytes_literal(self, value: bytes) -> str:
        return f"TO_BINARY('{value.hex().upper()}', 'HEX')"
