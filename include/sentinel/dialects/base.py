"""What every sentinel dialect builds the same way from its own pieces.

A dialect supplies quoting, the canonical text of a value, the row hash and its number, the bind style and
its literals; this class assembles them into the comparator's queries: key ranges, chunk boundaries,
checksums (whole chunk or per segment, in one scan), per-row hashes and rows fetched by key.

Two sides of different engines are compared in the portable canonical text (``portable=True``, the README's
"canonical text" table): the same text, hence the same MD5, in every dialect, whatever type each engine gave
the column (a PostgreSQL numeric(12,2) and its Delta decimal(12,2), a timestamptz and its Delta timestamp).
Each dialect says which portable kind a type is (``kind``) and spells the kind's text (``portable_text``).

Names written in lower case are upper-cased first by the dialects that fold unquoted names to upper case
(Oracle, Snowflake), then every name is quoted by sqlglot. Values are always bound parameters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

Key = tuple[Any, ...]
Params = dict[str, Any]
FOLDABLE = re.compile(r"[a-z_][a-z0-9_$#]*")


@functools.lru_cache(maxsize=4096)
def _quoted(name: str, dialect: str) -> str:
    # sqlglot builds a dialect and a generator per call: a comparison quotes the same few names thousands
    # of times (every span query), a fifth of the client's CPU before this cache
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


class SentinelDialect:
    name: str
    sqlglot_dialect: str
    folds_to_upper = False  # unquoted names are stored in upper case
    row_values = True  # (a, b) >= (x, y) is understood
    tuple_in = True  # (a, b) IN ((x, y), ...) is understood
    session_setup: tuple[str, ...] = ()  # run on every new connection
    binary_transfer = False  # the driver's cursor(binary=True) reads whole numbers without text
    spans = False  # neighbouring chunks of a whole-number key checksummed in one query (span_checksums_sql)
    begin: str | None = None  # starts a batch of the sync file
    commit: str | None = "COMMIT;"  # ends one

    def __init__(self, *, timestamp_precision: int = 6, float_digits: int | None = None, portable: bool = False):
        self.portable = portable
        # Delta keeps microseconds: a portable timestamp is compared at most to the microsecond
        self.timestamp_precision = min(timestamp_precision, 6) if portable else timestamp_precision
        self.float_digits = float_digits  # floats compared at this many significant digits
        if portable and not float_digits:
            self.float_digits = PORTABLE_FLOAT_DIGITS
        if portable:  # the same hash on both engines: MD5 as lower-case hex, its first 60 bits as the number
            self.row_hash = lambda columns: self.md5_hex(self.row_text(columns))
            self.hash_number = lambda columns: self.hex_prefix_number(self.md5_hex(self.row_text(columns)))

    # -- names and binds ------------------------------------------------------------------------

    @classmethod
    def ident(cls, name: str) -> str:
        if cls.folds_to_upper and FOLDABLE.fullmatch(name):
            name = name.upper()
        return _quoted(name, cls.sqlglot_dialect)

    @classmethod
    def table_ref(cls, schema: str | None, table: str) -> str:
        return f"{cls.ident(schema)}.{cls.ident(table)}" if schema else cls.ident(table)

    def bind(self, name: str) -> str:
        return f"%({name})s"

    def string(self, text: str) -> str:
        return exp.Literal.string(text).sql(dialect=self.sqlglot_dialect)

    # -- the canonical row ----------------------------------------------------------------------

    def columns_query(self, schema: str | None, table: str) -> tuple[str, Params]:
        """(name, data type, collation or NULL) of every column, in order."""
        raise NotImplementedError

    def column_rows(self, rows: Sequence[tuple]) -> list[tuple]:
        """(name, data type, collation) from the rows of ``columns_query``."""
        return list(rows)

    def text(self, column: str, data_type: str) -> str:
        """The canonical text of a non-NULL value of the column."""
        raise NotImplementedError

    def length(self, text: str) -> str:
        return f"LENGTH({text})"

    def concat(self, *parts: str) -> str:
        return " || ".join(parts)

    def plain(self, data_type: str) -> bool:
        """Whether the column's canonical text can never hold the separator '|' nor be 'N' (numbers,
        dates, hashes): such text needs no length prefix."""
        return False

    def canonical(self, column: str, data_type: str) -> str:
        """The value as text that compares equal across the two databases. NULL stays distinct from ''
        and from the text 'NULL' because free text is length-prefixed ('4:NULL', '0:') and NULL is 'N';
        plain text (a number, a timestamp) is written once, not computed twice."""
        col = self.ident(column)
        if self.portable:
            kind = self.kind(data_type)
            text = self.portable_text(col, kind, data_type)
            value = text if kind != "text" else self.concat(self.char_length(text), "':'", text)
        else:
            text = self.text(col, data_type)
            value = text if self.plain(data_type) else self.concat(self.length(text), "':'", text)
        return f"CASE WHEN {col} IS NULL THEN 'N' ELSE {value} END"

    # -- the portable canonical text (two engines) ------------------------------------------------
    # integer: '-42'; decimal: '12.5' (no trailing zeros, no bare '.'); float: '0' or 15 significant digits
    # '1.25000000000000e+00' of the value as a double; timestamp: microseconds since 1970-01-01 00:00 UTC
    # ('1706745599123456'; a timestamp without zone as if in UTC), divided down to timestamp_precision digits
    # (a number rather than ISO text: Spark's date_format costs more than the row's MD5, unix_micros nothing);
    # date: '2024-01-31'; boolean: 'true' | 'false'; binary: the MD5 of the bytes in lower-case hex; text:
    # '<characters>:<text>'.

    def kind(self, data_type: str) -> str:
        """integer | decimal | float | timestamp | timestamptz | date | boolean | binary | text."""
        raise NotImplementedError

    def portable_text(self, col: str, kind: str, data_type: str) -> str:
        raise NotImplementedError

    def char_length(self, text: str) -> str:
        """The number of characters (not bytes) of a text."""
        return self.length(text)

    def epoch_units(self, micros: str) -> str:
        """Microseconds since 1970-01-01 00:00 UTC (a whole number) cut to ``timestamp_precision`` digits of
        the second, toward zero: an integer division where the dialect's ``/`` divides whole numbers."""
        if self.timestamp_precision == 6:
            return micros
        return f"({micros} / {10 ** (6 - self.timestamp_precision)})"

    def md5_hex(self, text: str) -> str:
        """The MD5 of the text's UTF-8 bytes as 32 lower-case hex digits."""
        raise NotImplementedError

    def hex_prefix_number(self, hex_text: str) -> str:
        """The first 15 hex digits (60 bits) of an MD5 as an exact whole number (portable hash number)."""
        raise NotImplementedError

    def row_text(self, columns: Sequence[tuple[str, str]]) -> str:
        parts = [self.canonical(c, t) for c, t in columns]
        return self.concat(*[p for i, part in enumerate(parts) for p in ((part,) if i == 0 else ("'|'", part))])

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        """The row's hash as hex text (per-row comparison)."""
        raise NotImplementedError

    def hash_number(self, columns: Sequence[tuple[str, str]]) -> str:
        """A number from the row's hash, summed into checksums (order does not matter in a sum)."""
        raise NotImplementedError

    # -- key ranges -----------------------------------------------------------------------------

    def compare_keys(self, pk: Sequence[str], names: Sequence[str], op: str) -> str:
        """``(pk) op (binds)`` for op in >=, <: a row comparison, or expanded where the database has none:
        a > x OR (a = x AND (b op y))."""
        if self.row_values:
            keys = "(" + ", ".join(self.ident(k) for k in pk) + ")"
            return f"{keys} {op} (" + ", ".join(self.bind(n) for n in names) + ")"
        return self._expanded(pk, names, op)

    def _expanded(self, pk: Sequence[str], names: Sequence[str], op: str) -> str:
        column, bind = self.ident(pk[0]), self.bind(names[0])
        if len(pk) == 1:
            return f"{column} {op} {bind}"
        strict = ">" if op == ">=" else "<"
        return f"({column} {strict} {bind} OR ({column} = {bind} AND {self._expanded(pk[1:], names[1:], op)}))"

    def true(self) -> str:
        return "1 = 1"

    def key_range(
        self, pk: Sequence[str], lower: Key | None, upper: Key | None, *, prefix: str = ""
    ) -> tuple[str, Params]:
        """``lower <= key < upper`` (either bound may be open); ``prefix``: of the parameters' names, to put
        several ranges in one query."""
        parts, params = [], {}
        for side, bound, op in (("lo", lower, ">="), ("hi", upper, "<")):
            if bound is not None:
                names = [f"{prefix}{side}{i}" for i in range(len(pk))]
                parts.append(self.compare_keys(pk, names, op))
                params.update(zip(names, bound, strict=True))
        return (" AND ".join(parts) or self.true()), params

    def _range(self, pk, lower, upper, where) -> tuple[str, Params]:
        condition, params = self.key_range(pk, lower, upper)
        return (f"({condition}) AND ({where})" if where else condition), params

    def modulo(self, left: str, right: str) -> str:
        return f"MOD({left}, {right})"

    # -- key collations ---------------------------------------------------------------------------

    binary_collations: frozenset[str] = frozenset()  # names that all sort by code point (bytes)

    def sorts_alike(self, source: str | None, target: str | None) -> bool:
        """Whether two effective collations of a key column order (and equate) keys the same way."""
        return source == target or {source, target} <= self.binary_collations

    # -- the comparator's queries ---------------------------------------------------------------

    def boundaries_query(self, table: str, pk: Sequence[str], where: str | None, chunk_size: int):
        """The first key of every ``chunk_size`` keys: one ordered scan of the key, no OFFSET."""
        keys = ", ".join(self.ident(k) for k in pk)
        filtered = f" WHERE {where}" if where else ""
        return (
            f"SELECT {keys} FROM (SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {keys}) AS rn FROM {table}{filtered}) s "
            f"WHERE {self.modulo('rn - 1', self.bind('chunk'))} = 0 ORDER BY {keys}",
            {"chunk": chunk_size},
        )

    def checksum_sql(self, table: str, columns, pk, lower, upper, where) -> tuple[str, Params]:
        condition, params = self._range(pk, lower, upper, where)
        return (
            f"SELECT COUNT(*), COALESCE(SUM({self.hash_number(columns)}), 0) FROM {table} WHERE {condition}",
            params,
        )

    def segment_of(self, pk: Sequence[str], thresholds: Sequence[Key]) -> tuple[str, Params]:
        """The number of the segment a key falls in: 0 below ``thresholds[0]``, i from ``thresholds[i-1]``
        up to ``thresholds[i]``. A CASE that halves the thresholds at each level, so a row costs about
        log2(len(thresholds)) key comparisons."""
        params: Params = {}
        for i, threshold in enumerate(thresholds):
            params.update((f"t{i}_{j}", v) for j, v in enumerate(threshold))

        def bucket(low: int, high: int) -> str:
            if low == high:
                return str(low)
            mid = (low + high) // 2
            below = self.compare_keys(pk, [f"t{mid}_{j}" for j in range(len(pk))], "<")
            return f"CASE WHEN {below} THEN {bucket(low, mid)} ELSE {bucket(mid + 1, high)} END"

        return bucket(0, len(thresholds)), params

    def stride_segment(self, key: str, first: int, stride: int, count: int) -> tuple[str, Params] | None:
        """The segment number of a whole-number key whose ``count`` thresholds are ``first`` and every
        ``stride`` after it, by arithmetic instead of comparisons (numbered as ``segment_of``); None where
        the dialect's division does not truncate whole numbers."""
        return None

    def segment_checksums_sql(self, table: str, columns, pk, lower, upper, where, thresholds, stride=None):
        """Count and hash sum per segment of a chunk, from one scan of the chunk; ``stride``: the thresholds
        of a whole-number key are evenly spaced this far apart."""
        condition, params = self._range(pk, lower, upper, where)
        found = self.stride_segment(pk[0], thresholds[0][0], stride, len(thresholds)) if stride else None
        segment, segment_params = found or self.segment_of(pk, thresholds)
        return (
            f"SELECT segment, COUNT(*), SUM(h) FROM (SELECT {segment} AS segment, {self.hash_number(columns)} AS h "
            f"FROM {table} WHERE {condition}) s GROUP BY segment",
            params | segment_params,
        )

    def span_checksums_sql(self, table: str, columns, pk, bounds, where) -> tuple[str, Params]:
        """Count and hash sum of each of the neighbouring key ranges ``bounds`` [(lower, upper), ...],
        numbered from 0 (empty ones left out): the segments of several chunks in one query."""
        thresholds = [lower for lower, _ in bounds[1:]]
        return self.segment_checksums_sql(table, columns, pk, bounds[0][0], bounds[-1][1], where, thresholds)

    def row_hashes_sql(self, table: str, columns, pk, lower, upper, where) -> tuple[str, Params]:
        condition, params = self._range(pk, lower, upper, where)
        keys = ", ".join(self.ident(k) for k in pk)
        return f"SELECT {keys}, {self.row_hash(columns)} FROM {table} WHERE {condition}", params

    def row_hashes_in_ranges_sql(self, table: str, columns, pk, ranges, where) -> tuple[str, Params]:
        """(key, row hash) of the rows in any of the key ``ranges`` (lower, upper): one query for the
        differing segments of several chunks."""
        parts, params = [], {}
        for i, (lower, upper) in enumerate(ranges):
            condition, bound = self.key_range(pk, lower, upper, prefix=f"r{i}_")
            parts.append(f"({condition})")
            params.update(bound)
        matched = " OR ".join(parts) or self.true()
        keys = ", ".join(self.ident(k) for k in pk)
        where = f"({matched}) AND ({where})" if where else matched
        return f"SELECT {keys}, {self.row_hash(columns)} FROM {table} WHERE {where}", params

    def row_hash_arrays_sql(self, table: str, columns, pk, lower, upper, where) -> tuple[str, Params]:
        """One row: the keys (one whole-number column) and their row hashes in key order, each packed as
        big-endian 64-bit integers (bytes), or NULL for no rows."""
        raise NotImplementedError(f"{self.name} has no arrays: read row_hashes_sql")

    # -- chunks that need no order: buckets of the key's hash ------------------------------------
    # When the key columns sort differently on the two sides, a key range would hold different rows on each:
    # rows are then grouped by a number computed from the canonical text of their key (the same bytes on both
    # sides whatever the collation), in one grouped scan of each side.

    def bucket_of(self, key_columns: Sequence[tuple[str, str]], buckets: int) -> str:
        return self.modulo(self.hash_number(key_columns), exp.Literal.number(int(buckets)).sql())

    def filter_text(self, where: str | None) -> str | None:
        """A table's ``where`` filter as it goes into a query with this driver's binds: as written, for drivers
        that substitute binds by pattern or bind on the server."""
        return where

    def _where(self, where: str | None) -> str:
        return f" WHERE {where}" if where else ""

    def bucket_checksums_sql(self, table: str, columns, key_columns, buckets: int, where) -> tuple[str, Params]:
        """Count and hash sum per bucket of the key's hash, from one scan of the table."""
        return (
            f"SELECT b, COUNT(*), SUM(h) FROM (SELECT {self.bucket_of(key_columns, buckets)} AS b, "
            f"{self.hash_number(columns)} AS h FROM {table}{self._where(where)}) s GROUP BY b",
            {},
        )

    def bucket_hashes_sql(self, table: str, columns, key_columns, buckets: int, wanted, where):
        """(key, row hash) of the rows in the ``wanted`` buckets (all rows when ``wanted`` is None)."""
        keys = ", ".join(self.ident(k) for k, _ in key_columns)
        if wanted is None:
            return f"SELECT {keys}, {self.row_hash(columns)} FROM {table}{self._where(where)}", {}
        listed, params = self.bucket_list(wanted)
        return (
            f"SELECT {keys}, h FROM (SELECT {keys}, {self.row_hash(columns)} AS h, "
            f"{self.bucket_of(key_columns, buckets)} AS b FROM {table}{self._where(where)}) s WHERE {listed}",
            params,
        )

    max_buckets_listed: int | None = 1000  # more differing buckets than this: every row is read instead

    def bucket_list(self, wanted) -> tuple[str, Params]:
        """``b`` in the wanted bucket numbers (whole numbers we computed, written as literals)."""
        return f"b IN ({', '.join(exp.Literal.number(int(b)).sql() for b in wanted)})", {}

    integer_types: frozenset[str] = frozenset()  # key types planned from count, minimum and maximum

    def integer_key(self, data_type: str) -> bool:
        return data_type in self.integer_types

    def key_stats_sql(self, table: str, key: str, where: str | None) -> tuple[str, Params]:
        column = self.ident(key)
        return f"SELECT COUNT(*), MIN({column}), MAX({column}) FROM {table}{self._where(where)}", {}

    def estimated_key_stats_sql(self, table: str, key: str) -> tuple[str, Params] | None:
        """The table's row count as its statistics estimate it (NULL when it has none), with the key's
        minimum and maximum (read from its index): planning without counting every row. None: no estimate."""
        return None

    def row_count_sql(self, table: str, where: str | None) -> tuple[str, Params]:
        return f"SELECT COUNT(*) FROM {table}{self._where(where)}", {}

    def rows_by_key_query(
        self, table: str, select: str, pk: Sequence[str], keys: Sequence[Key], where: str | None = None
    ):
        params: Params = {}
        for i, key in enumerate(keys):
            params.update((f"k{i}_{j}", v) for j, v in enumerate(key))
        binds = [[self.bind(f"k{i}_{j}") for j in range(len(pk))] for i in range(len(keys))]
        if len(pk) == 1:
            match = f"{self.ident(pk[0])} IN ({', '.join(b[0] for b in binds)})"
        elif self.tuple_in:
            columns = "(" + ", ".join(self.ident(k) for k in pk) + ")"
            match = f"{columns} IN ({', '.join('(' + ', '.join(b) + ')' for b in binds)})"
        else:
            pairs = (" AND ".join(f"{self.ident(k)} = {v}" for k, v in zip(pk, b, strict=True)) for b in binds)
            match = " OR ".join(f"({p})" for p in pairs)
        return f"SELECT {select} FROM {table} WHERE {f'({match}) AND ({where})' if where else match}", params

    def canonical_rows_query(self, table: str, columns, pk, keys: Sequence[Key], where: str | None = None):
        select = ", ".join([*(self.ident(k) for k in pk), *(self.canonical(c, t) for c, t in columns)])
        return self.rows_by_key_query(table, select, pk, keys, where)

    def raw_rows_query(self, table: str, columns, pk, keys: Sequence[Key], where: str | None = None):
        select = ", ".join([*(self.ident(k) for k in pk), *(self.ident(c) for c, _ in columns)])
        return self.rows_by_key_query(table, select, pk, keys, where)

    # -- the sync file --------------------------------------------------------------------------

    true_literal, false_literal = "TRUE", "FALSE"

    def literal(self, value: Any) -> str:
        """A value of a source row as a literal of this database, its type explicit where it matters."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return self.true_literal if value else self.false_literal
        if isinstance(value, int | Decimal | float):
            return exp.Literal.number(value).sql(dialect=self.sqlglot_dialect)
        if isinstance(value, datetime):
            return self.timestamp_literal(value)
        if isinstance(value, date):
            return self.date_literal(value)
        if isinstance(value, bytes | memoryview):
            return self.bytes_literal(bytes(value))
        return self.text_literal(str(value))

    def timestamp_literal(self, value: datetime) -> str:
        raise NotImplementedError

    def date_literal(self, value: date) -> str:
        raise NotImplementedError

    def bytes_literal(self, value: bytes) -> str:
        raise NotImplementedError

    def text_literal(self, text: str) -> str:
        return self.string(text)

    def update_statement(self, table: str, sets: str, where: str) -> str:
        return f"UPDATE {table} SET {sets} WHERE {where};"

    def delete_statement(self, table: str, where: str) -> str:
        return f"DELETE FROM {table} WHERE {where};"


PORTABLE_FLOAT_DIGITS = 15  # a double's digits that survive text -> double -> text on every engine


def scientific(digits: int) -> str:
    """A TO_CHAR format of ``digits`` significant digits in scientific notation (PostgreSQL, Oracle,
    Snowflake): how floats compare within a tolerance."""
    return "9" + ("." + "9" * (digits - 1) if digits > 1 else "") + "EEEE"
