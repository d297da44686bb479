"""SQL Server (T-SQL): the comparator's queries in SQL Server's terms, for pymssql (``%(name)s`` binds).

- No row-value comparison: key ranges and key lists are expanded into AND/OR.
- ``LEN`` ignores trailing spaces, so lengths are taken of the text with a character appended.
- ``HASHBYTES('MD5', ...)`` gives the row hash; the first 7 bytes make a positive BIGINT, summed as
  DECIMAL(38, 0) so that a chunk's sum cannot overflow. (Inputs over 8,000 bytes need SQL Server 2016.)
- Timestamps are written as ISO 8601 (style 126) to the second, then the fraction from DATEPART, so the
  precision is exact whatever the column's scale; DATETIMEOFFSET is compared in UTC.
- The sync file commits in explicit transactions (a bare COMMIT without BEGIN TRANSACTION is an error).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from include.sentinel.dialects.base import Params, SentinelDialect

NUMERIC = ("tinyint", "smallint", "int", "bigint", "decimal", "numeric", "money", "smallmoney", "bit")
FLOATS = ("float", "real")
TIMESTAMPS = ("datetime", "datetime2", "smalldatetime", "datetimeoffset")
BINARIES = ("binary", "varbinary", "image", "timestamp", "rowversion")


class SqlServerSentinel(SentinelDialect):
    name = "sqlserver"
    sqlglot_dialect = "tsql"
    row_values = False
    tuple_in = False
    begin = "BEGIN TRANSACTION;"
    commit = "COMMIT TRANSACTION;"
    true_literal, false_literal = "1", "0"
    integer_types = frozenset(("tinyint", "smallint", "int", "bigint"))

    def sorts_alike(self, source: str | None, target: str | None) -> bool:
        """Two BIN2 collations both order by code point, whatever their locale part."""
        binary = all(c is not None and c.upper().endswith("_BIN2") for c in (source, target))
        return source == target or binary

    def columns_query(self, schema: str | None, table: str) -> tuple[str, Params]:
        return (
            "SELECT COLUMN_NAME, DATA_TYPE, COLLATION_NAME FROM INFORMATION_SCHEMA.COLUMNS "
            "WHERE TABLE_SCHEMA = COALESCE(%(schema)s, SCHEMA_NAME()) AND TABLE_NAME = %(table)s "
            "ORDER BY ORDINAL_POSITION",
            {"schema": schema, "table": table},
        )

    def plain(self, data_type: str) -> bool:
        kind = re.sub(r"\(.*\)", "", data_type).lower()
        return kind in (*NUMERIC, *FLOATS, *TIMESTAMPS, *BINARIES, "date", "uniqueidentifier")

    def text(self, col: str, data_type: str) -> str:
        kind = re.sub(r"\(.*\)", "", data_type).lower()
        if kind in FLOATS:
            if self.float_digits:  # FORMAT is slow (CLR) but the only significant-digits format
                return f"FORMAT({col}, 'E{self.float_digits - 1}', 'en-US')"
            return f"CONVERT(VARCHAR(32), {col}, 3)"  # 17 digits: lossless
        if kind in NUMERIC:
            return f"CONVERT(VARCHAR(64), {col})"
        if kind in TIMESTAMPS:
            value = f"CAST(SWITCHOFFSET({col}, '+00:00') AS DATETIME2(7))" if kind == "datetimeoffset" else col
            seconds = f"CONVERT(VARCHAR(19), {value}, 126)"
            digits = self.timestamp_precision
            if not digits:
                return seconds
            micros = f"RIGHT('000000' + CAST(DATEPART(MICROSECOND, {value}) AS VARCHAR(6)), 6)"
            return f"{seconds} + '.' + LEFT({micros}, {min(digits, 6)})"
        if kind == "date":
            return f"CONVERT(VARCHAR(10), {col}, 23)"
        if kind in ("char", "nchar"):
            return f"RTRIM({col})"
        if kind in BINARIES:
            return f"CONVERT(VARCHAR(32), HASHBYTES('MD5', {col}), 2)"
        if kind in ("text", "ntext", "xml"):
            return f"CAST({col} AS NVARCHAR(MAX))"
        if kind == "uniqueidentifier":
            return f"CONVERT(VARCHAR(36), {col})"
        return col

    def kind(self, data_type: str) -> str:
        kind = re.sub(r"\(.*\)", "", data_type).lower()
        if kind in self.integer_types:
            return "integer"
        if kind in ("decimal", "numeric", "money", "smallmoney"):
            return "decimal"
        if kind in FLOATS:
            return "float"
        if kind in TIMESTAMPS:
            return "timestamptz" if kind == "datetimeoffset" else "timestamp"
        if kind in BINARIES:
            return "binary"
        return {"date": "date", "bit": "boolean"}.get(kind, "text")

    def portable_text(self, col: str, kind: str, data_type: str) -> str:
        if kind == "decimal":
            text = f"CONVERT(VARCHAR(64), {col})"
            # trailing zeros of the fraction, then a bare point, cut (no TRIM(TRAILING) before 2022)
            cut = f"LEFT({text}, LEN({text}) - PATINDEX('%[^0]%', REVERSE({text})) + 1)"
            bare = f"CASE WHEN RIGHT({cut}, 1) = '.' THEN LEFT({cut}, LEN({cut}) - 1) ELSE {cut} END"
            return f"CASE WHEN CHARINDEX('.', {text}) > 0 THEN {bare} ELSE {text} END"
        if kind == "float":  # FORMAT writes a three-digit exponent: E+000
            sci = f"LOWER(FORMAT(CAST({col} AS FLOAT), 'E{self.float_digits - 1}', 'en-US'))"
            return f"CASE WHEN {col} = 0 THEN '0' ELSE REPLACE(REPLACE({sci}, 'e+0', 'e+'), 'e-0', 'e-') END"
        if kind in ("timestamp", "timestamptz"):
            value = f"CAST(SWITCHOFFSET({col}, '+00:00') AS DATETIME2(7))" if kind == "timestamptz" else col
            micros = f"DATEDIFF_BIG(MICROSECOND, '1970-01-01', {value})"
            return f"CONVERT(VARCHAR(20), {self.epoch_units(micros)})"
        if kind == "boolean":
            return f"CASE WHEN {col} = 1 THEN 'true' ELSE 'false' END"
        if kind == "binary":
            return f"LOWER(CONVERT(VARCHAR(32), HASHBYTES('MD5', {col}), 2))"
        if kind == "integer":
            return f"CONVERT(VARCHAR(20), {col})"
        return self.text(col, data_type)

    def md5_hex(self, text: str) -> str:
        # the MD5 of the UTF-8 bytes (SQL Server 2019's UTF-8 collations), not of NVARCHAR's UTF-16
        utf8 = f"CAST(({text}) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX))"
        return f"LOWER(CONVERT(VARCHAR(32), HASHBYTES('MD5', {utf8}), 2))"

    def hex_prefix_number(self, hex_text: str) -> str:
        digits = f"CONVERT(VARBINARY(8), '0' + SUBSTRING({hex_text}, 1, 15), 2)"
        return f"CAST(CAST({digits} AS BIGINT) AS DECIMAL(38, 0))"

    def length(self, text: str) -> str:
        return f"LEN({text} + 'x') - 1"

    def concat(self, *parts: str) -> str:
        return f"CONCAT({', '.join(parts)})"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        return f"CONVERT(VARCHAR(32), HASHBYTES('MD5', {self.row_text(columns)}), 2)"

    def hash_number(self, columns: Sequence[tuple[str, str]]) -> str:
        digest = f"HASHBYTES('MD5', {self.row_text(columns)})"
        return f"CAST(CAST(SUBSTRING({digest}, 1, 7) AS BIGINT) AS DECIMAL(38, 0))"

    def modulo(self, left: str, right: str) -> str:
        # pymssql substitutes only %(name)s binds (by pattern, not with Python's % operator): a % stays a %
        return f"({left}) % {right}"

    def timestamp_literal(self, value: datetime) -> str:
        kind = "DATETIMEOFFSET(7)" if value.tzinfo is not None else "DATETIME2(7)"
        return f"CAST({self.string(value.isoformat(timespec='microseconds'))} AS {kind})"

    def date_literal(self, value: date) -> str:
        return f"CAST({self.string(value.isoformat())} AS DATE)"

    def bytes_literal(self, value: bytes) -> str:
        return "0x" + value.hex().upper()

    def text_literal(self, text: str) -> str:
        return "N" + self.string(text)  # NVARCHAR: keeps characters outside the database's code page
