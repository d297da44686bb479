"""ClickHouse: the comparator's queries in ClickHouse's terms, for clickhouse-connect (``%(name)s`` binds,
formatted on the client).

- Types arrive wrapped (``Nullable(...)``, ``LowCardinality(...)``): the inner type decides the text.
- Strings compare as bytes (there are no collations), so string keys always agree.
- Checksums sum the first 64 bits of each row's MD5 as UInt64; the sum wraps modulo 2^64 identically on
  both sides, which keeps it a checksum.
- No transactions: the sync file has no COMMIT; updates are mutations (``ALTER TABLE ... UPDATE``, waited
  for with ``mutations_sync``) and deletes are lightweight ``DELETE FROM``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime

from include.sentinel.dialects.base import Params, SentinelDialect

WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")
PLAIN = re.compile(r"^(?:U?Int\d+|Float\d+|Decimal|Date|DateTime|UUID|Bool)")


def inner_type(data_type: str) -> str:
    while match := WRAPPERS.match(data_type):
        data_type = match.group(1)
    return data_type


class ClickHouseSentinel(SentinelDialect):
    name = "clickhouse"
    sqlglot_dialect = "clickhouse"
    commit = None
    true_literal, false_literal = "true", "false"

    def columns_query(self, schema: str | None, table: str) -> tuple[str, Params]:
        return (
            "SELECT name, type, NULL FROM system.columns "
            "WHERE database = coalesce(%(schema)s, currentDatabase()) AND table = %(table)s ORDER BY position",
            {"schema": schema, "table": table},
        )

    def plain(self, data_type: str) -> bool:
        return PLAIN.match(inner_type(data_type)) is not None

    def text(self, col: str, data_type: str) -> str:
        kind = inner_type(data_type)
        if kind.startswith("Float") and self.float_digits:
            # rounded to significant digits (no printf: a '%' would need escaping only when binds are sent)
            scale = f"{self.float_digits - 1} - toInt32(floor(log10(abs({col}))))"
            return f"if({col} = 0 OR NOT isFinite({col}), toString({col}), toString(round({col}, {scale})))"
        if kind.startswith("DateTime"):
            digits = self.timestamp_precision
            value = f"toDateTime64({col}, {digits}, 'UTC')" if digits else f"toDateTime({col}, 'UTC')"
            return f"replace(toString({value}), ' ', 'T')"
        if kind.startswith("FixedString"):
            return f"trimRight(toString({col}), '\\0')"
        if kind == "String":
            return col
        return f"toString({col})"

    def kind(self, data_type: str) -> str:
        kind = inner_type(data_type)
        if re.match(r"U?Int\d+$", kind):
            return "integer"
        if kind.startswith("Decimal"):
            return "decimal"
        if kind.startswith("Float"):
            return "float"
        if kind.startswith("DateTime"):
            return "timestamptz"  # an instant, whatever zone the column shows it in
        if kind.startswith("Date"):
            return "date"
        return {"Bool": "boolean"}.get(kind, "text")

    def portable_text(self, col: str, kind: str, data_type: str) -> str:
        if kind == "float":
            # printf's format built from char(37): a literal '%' would need escaping only when binds are sent
            digits = self.float_digits - 1
            return f"if({col} = 0, '0', printf(concat(char(37), '.{digits}e'), toFloat64({col})))"
        if kind == "timestamptz":
            return f"toString({self.epoch_units(f'toUnixTimestamp64Micro(toDateTime64({col}, 6))')})"
        if kind == "text":
            return self.text(col, data_type)  # String as it is, FixedString without its NUL padding
        return f"toString({col})"  # decimals print without trailing zeros, booleans as 'true' / 'false'

    def char_length(self, text: str) -> str:
        return f"toString(lengthUTF8({text}))"

    def md5_hex(self, text: str) -> str:
        return f"lower(hex(MD5({text})))"

    def hex_prefix_number(self, hex_text: str) -> str:
        # UInt128: a sum of UInt64 would wrap, and the other side sums exactly
        return f"toUInt128(bitShiftRight(reinterpretAsUInt64(reverse(unhex(substring({hex_text}, 1, 16)))), 4))"

    def concat(self, *parts: str) -> str:
        return f"concat({', '.join(parts)})"

    def length(self, text: str) -> str:
        return f"toString(length({text}))"

    def true(self) -> str:
        return "1"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        return f"hex(MD5({self.row_text(columns)}))"

    def hash_number(self, columns: Sequence[tuple[str, str]]) -> str:
        return f"reinterpretAsUInt64(MD5({self.row_text(columns)}))"

    def modulo(self, left: str, right: str) -> str:
        return f"modulo({left}, {right})"

    def epoch_units(self, micros: str) -> str:
        if self.timestamp_precision == 6:
            return micros
        return f"intDiv({micros}, {10 ** (6 - self.timestamp_precision)})"

    def update_statement(self, table: str, sets: str, where: str) -> str:
        return f"ALTER TABLE {table} UPDATE {sets} WHERE {where} SETTINGS mutations_sync = 2;"

    def timestamp_literal(self, value: datetime) -> str:
        utc = value.astimezone(UTC) if value.tzinfo else value
        text = self.string(utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds"))
        return f"toDateTime64({text}, 6, 'UTC')"

    def date_literal(self, value: date) -> str:
        return f"toDate({self.string(value.isoformat())})"

    def bytes_literal(self, value: bytes) -> str:
        return f"unhex('{value.hex().upper()}')"
