"""Spark SQL: the comparator's queries over Delta tables, for the local Sail engine (through
include/sentinel/spark.py) and Databricks SQL (databricks-sql-connector, the same named binds).

- Binds are Spark SQL named parameters (``:lo0``), sent apart from the SQL text by both clients.
- A table is ``schema.table`` with a dotted schema split into its parts (``main.bronze``), or a Delta folder
  as ``Side(schema="delta", table="/path/to/table")`` -> ``delta.`/path/to/table```.
- Columns come from ``DESCRIBE TABLE`` (Sail has none for a Delta folder: the local connection answers it
  from the table's schema).
- Its canonical text is always the portable one (see base.py): a Delta table is compared with the table
  it was loaded from, on another engine. Timestamps are microseconds since the epoch (``unix_micros``),
  whatever the session's time zone.
- The checksum number is the MD5's first 60 bits as DECIMAL(19, 0): a sum of BIGINT would overflow (an
  error under ANSI mode), a sum of decimals is exact.
- No sync statements: a bronze table is fixed by reloading it with the loader (the sync file says so
  and lists the keys).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlglot import exp

from include.sentinel.dialects.base import Params, SentinelDialect

INTEGERS = ("tinyint", "smallint", "int", "integer", "bigint", "byte", "short", "long")


class SparkSentinel(SentinelDialect):
    name = "spark"
    sqlglot_dialect = "spark"
    commit = None
    integer_types = frozenset(INTEGERS)
    true_literal, false_literal = "true", "false"
    reload_note = (
        "a Delta bronze table is not patched by hand: reload it with the loader (dataloader run, or a full "
        "reload of the control row), then verify again"
    )

    def __init__(self, *, timestamp_precision: int = 6, float_digits: int | None = None, portable: bool = True):
        super().__init__(timestamp_precision=timestamp_precision, float_digits=float_digits, portable=True)

    @classmethod
    def table_ref(cls, schema: str | None, table: str) -> str:
        parts = [*(schema.split(".") if schema else ()), table]
        return ".".join(cls.ident(p) for p in parts)

    def bind(self, name: str) -> str:
        return f":{name}"

    def columns_query(self, schema: str | None, table: str) -> tuple[str, Params]:
        return f"DESCRIBE TABLE {self.table_ref(schema, table)}", {}

    def column_rows(self, rows: Sequence[tuple]) -> list[tuple]:
        """DESCRIBE's (col_name, data_type, comment) up to its first section ('# Partition Information')."""
        found = []
        for name, data_type, *_ in rows:
            if not name or name.startswith("#"):
                break
            found.append((name, data_type.lower(), None))
        return found

    def kind(self, data_type: str) -> str:
        kind = data_type.lower()
        if kind in INTEGERS:
            return "integer"
        if kind.startswith("decimal"):
            return "decimal"
        if kind in ("float", "double", "real"):
            return "float"
        if kind.startswith("timestamp"):
            return "timestamp" if kind == "timestamp_ntz" else "timestamptz"
        return {"date": "date", "boolean": "boolean", "binary": "binary"}.get(kind, "text")

    def portable_text(self, col: str, kind: str, data_type: str) -> str:
        if kind == "decimal":
            text = f"CAST({col} AS STRING)"
            return (
                f"CASE WHEN instr({text}, '.') > 0 THEN TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text})) "
                f"ELSE {text} END"
            )
        if kind == "float":
            sci = f"format_string('%.{self.float_digits - 1}e', CAST({col} AS DOUBLE))"
            return f"CASE WHEN {col} = 0 THEN '0' ELSE {sci} END"
        if kind in ("timestamp", "timestamptz"):
            # a timestamp_ntz becomes the instant of its wall time in UTC (a cast reads it in the session's zone)
            value = (
                col if kind == "timestamptz" else f"from_utc_timestamp(CAST({col} AS TIMESTAMP), current_timezone())"
            )
            return f"CAST({self.epoch_units(f'unix_micros({value})')} AS STRING)"
        if kind == "date":
            return f"date_format({col}, 'yyyy-MM-dd')"
        if kind == "binary":
            return f"md5({col})"
        if kind == "text" and re.sub(r"\(.*\)", "", data_type.lower()) == "string":
            return col
        return f"CAST({col} AS STRING)"  # integers, booleans ('true' / 'false')

    # the same-engine text is the portable one
    def text(self, col: str, data_type: str) -> str:
        return self.portable_text(col, self.kind(data_type), data_type)

    def plain(self, data_type: str) -> bool:
        return self.kind(data_type) != "text"

    def length(self, text: str) -> str:
        return f"char_length({text})"

    def concat(self, *parts: str) -> str:
        return f"concat({', '.join(parts)})"

    def md5_hex(self, text: str) -> str:
        return f"md5({text})"

    def hex_prefix_number(self, hex_text: str) -> str:
        return f"CAST(conv(substr({hex_text}, 1, 15), 16, 10) AS DECIMAL(19, 0))"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        return self.md5_hex(self.row_text(columns))

    def hash_number(self, columns: Sequence[tuple[str, str]]) -> str:
        return self.hex_prefix_number(self.md5_hex(self.row_text(columns)))

    def modulo(self, left: str, right: str) -> str:
        return f"pmod({left}, {right})"

    def epoch_units(self, micros: str) -> str:
        if self.timestamp_precision == 6:
            return micros
        return f"({micros} div {10 ** (6 - self.timestamp_precision)})"  # '/' divides as doubles

    def true(self) -> str:
        return "TRUE"

    def timestamp_literal(self, value: datetime) -> str:
        if value.tzinfo is not None:
            text = value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")
            return f"TIMESTAMP {self.string(text)}"
        return f"TIMESTAMP_NTZ {self.string(value.isoformat(sep=' ', timespec='microseconds'))}"

    def date_literal(self, value: date) -> str:
        return f"DATE {self.string(value.isoformat())}"

    def bytes_literal(self, value: bytes) -> str:
        return f"X'{value.hex().upper()}'"

    def text_literal(self, text: str) -> str:
        return exp.Literal.string(text).sql(dialect="spark")
