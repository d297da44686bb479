"""PostgreSQL: the canonical row, its hash, checksums, key ranges and literals in PostgreSQL's terms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from include.sentinel.dialects.base import Key, Params, SentinelDialect, scientific

NUMERIC = ("numeric", "decimal", "smallint", "integer", "bigint")
FLOATS = ("real", "double precision")
STRINGS = ("text", "character varying", "character")
PLAIN = ("date", "bytea", "boolean", "uuid")


def _int_array(values) -> str:
    """Whole numbers as PostgreSQL's array text, bound as one parameter (cast in the query): psycopg dumps a
    list with a Python call per element, which cost the client more than the query's own rows."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


class PostgresSentinel(SentinelDialect):
    name = "postgresql"
    sqlglot_dialect = "postgres"

    # the database's default: ICU locale (``daticulocale`` in 15 and 16, ``datlocale`` from 17) or libc collate
    DATABASE_COLLATION = (
        "(SELECT CASE d.datlocprovider WHEN 'i' THEN 'icu ' || coalesce(to_jsonb(d) ->> 'daticulocale', "
        "to_jsonb(d) ->> 'datlocale') WHEN 'b' THEN 'builtin ' || (to_jsonb(d) ->> 'datlocale') "
        "ELSE 'libc ' || d.datcollate END FROM pg_database d WHERE d.datname = current_database())"
    )
    integer_types = frozenset(("smallint", "integer", "bigint"))
    binary_transfer = True  # psycopg
    spans = True
    binary_collations = frozenset(("libc C", "libc POSIX", "libc C.UTF-8", "libc C.utf8", "builtin C"))

    def filter_text(self, where: str | None) -> str | None:
        # psycopg formats every query the comparator sends (its binds never None): a LIKE 'A%' must be %%
        return where.replace("%", "%%") if where else where

    def columns_query(self, schema: str | None, table: str) -> tuple[str, Params]:
        """The effective collation of every string column: its own (provider and locale, and whether it is
        nondeterministic), or the database's default (which may be an ICU locale)."""
        own = (
            "(SELECT CASE l.collprovider WHEN 'd' THEN " + self.DATABASE_COLLATION + " "
            "WHEN 'i' THEN 'icu ' || coalesce(to_jsonb(l) ->> 'colliculocale', to_jsonb(l) ->> 'colllocale') "
            "WHEN 'b' THEN 'builtin ' || (to_jsonb(l) ->> 'colllocale') ELSE 'libc ' || l.collcollate END "
            "|| CASE WHEN l.collisdeterministic THEN '' ELSE ' nondeterministic' END "
            "FROM pg_collation l JOIN pg_namespace n ON n.oid = l.collnamespace "
            "WHERE l.collname = c.collation_name AND n.nspname = c.collation_schema)"
        )
        return (
            f"SELECT c.column_name, c.data_type, CASE WHEN c.collation_name IS NOT NULL THEN {own} "
            f"WHEN c.data_type IN ({', '.join(map(self.string, STRINGS))}) THEN {self.DATABASE_COLLATION} END "
            "FROM information_schema.columns c "
            "WHERE c.table_schema = coalesce(%(schema)s, current_schema()) AND c.table_name = %(table)s "
            "ORDER BY c.ordinal_position",
            {"schema": schema, "table": table},
        )

    def plain(self, data_type: str) -> bool:
        return data_type in (*NUMERIC, *FLOATS, *PLAIN) or data_type.startswith("timestamp")

    def text(self, col: str, data_type: str) -> str:
        if data_type in FLOATS and self.float_digits:
            return f"to_char({col}, '{scientific(self.float_digits)}')"
        if data_type in NUMERIC or data_type in FLOATS:
            return f"trim_scale({col}::numeric)::text"
        if data_type.startswith("timestamp"):
            digits = min(self.timestamp_precision, 6)  # PostgreSQL keeps microseconds
            zone = " AT TIME ZONE 'UTC'" if "with time zone" in data_type else ""
            if digits == 0:
                return f"to_char({col}{zone}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
            text = f"to_char({col}{zone}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
            return text if digits == 6 else f"left({text}, {digits - 6})"  # the first ``digits`` digits
        if data_type == "date":
            return f"to_char({col}, 'YYYY-MM-DD')"
        if data_type == "character":
            return f"rtrim({col})"  # CHAR padding is not data
        if data_type == "bytea":
            return f"md5({col})"
        return f"{col}::text"

    def length(self, text: str) -> str:
        return f"length({text})"

    def kind(self, data_type: str) -> str:
        if data_type in self.integer_types or data_type == "oid":  # the loader stores an oid as a bigint
            return "integer"
        if data_type in ("numeric", "decimal"):
            return "decimal"
        if data_type in FLOATS:
            return "float"
        if data_type.startswith("timestamp"):
            return "timestamptz" if "with time zone" in data_type else "timestamp"
        return {"date": "date", "boolean": "boolean", "bytea": "binary"}.get(data_type, "text")

    def portable_text(self, col: str, kind: str, data_type: str) -> str:
        if kind == "integer":
            return f"{col}::text"
        if kind == "decimal":
            return f"trim_scale({col})::text"
        if kind == "float":
            sci = f"ltrim(to_char({col}::float8, '{scientific(self.float_digits)}'))"
            return f"CASE WHEN {col} = 0 THEN '0' ELSE {sci} END"
        if kind in ("timestamp", "timestamptz"):  # a timestamp without zone: its nominal epoch (as in UTC)
            return f"{self.epoch_units(f'(extract(epoch from {col}) * 1000000)::bigint')}::text"
        if kind == "date":
            return f"to_char({col}, 'YYYY-MM-DD')"
        if kind == "binary":
            return f"md5({col})"
        if data_type == "character":
            return f"concat({col})"  # with its padding, as drivers read it (a cast to text would trim it)
        return f"{col}::text"  # booleans print 'true' / 'false'; uuid, json, intervals their text form

    def md5_hex(self, text: str) -> str:
        return f"md5({text})"

    def hex_prefix_number(self, hex_text: str) -> str:
        return f"('x' || substr({hex_text}, 1, 15))::bit(60)::bigint"

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        """The row's 64-bit ``hashtextextended`` of its canonical text's bytes (``COLLATE "C"``: a
        nondeterministic collation would hash its sort key): about half the cost of md5 and its hex
        prefix, and stable across versions (hash partitioning depends on it). Both sides are PostgreSQL
        here; two engines use the portable MD5 instead (set in ``__init__``)."""
        return f'hashtextextended(({self.row_text(columns)}) COLLATE "C", 0)'

    def hash_number(self, columns: Sequence[tuple[str, str]]) -> str:
        return self.row_hash(columns)  # already a number; summed as numeric, so no overflow

    def bucket_of(self, key_columns: Sequence[tuple[str, str]], buckets: int) -> str:
        """The key's bucket from ``hashtextextended`` of its canonical text, bytes in ``COLLATE "C"`` (a
        nondeterministic collation would hash its sort key instead): several times cheaper than md5, and
        stable across versions (hash partitioning depends on it)."""
        if self.portable:  # the other engine computes the same number from the key's MD5
            return super().bucket_of(key_columns, buckets)
        return f'mod(hashtextextended(({self.row_text(key_columns)}) COLLATE "C", 0), {int(buckets)})'

    max_buckets_listed = None  # an array parameter of any length, matched by hash in one scan

    def bucket_list(self, wanted) -> tuple[str, Params]:
        return "b = ANY(%(buckets)s)", {"buckets": [int(b) for b in wanted]}

    def true(self) -> str:
        return "TRUE"

    def segment_of(self, pk: Sequence[str], thresholds: Sequence[Key]) -> tuple[str, Params]:
        if len(pk) > 1:
            return super().segment_of(pk, thresholds)
        # a binary search over an array parameter, numbered the way the base class numbers segments
        return f"width_bucket({self.ident(pk[0])}, %(thresholds)s)", {"thresholds": [t[0] for t in thresholds]}

    def row_hash_arrays_sql(self, table: str, columns, pk, lower, upper, where) -> tuple[str, Params]:
        """The keys and their rows' hash numbers in key order, each column packed into one bytea of
        big-endian 64-bit integers (``int8send``): read as two arrays without a Python object per row."""
        condition, params = self._range(pk, lower, upper, where)
        key = self.ident(pk[0])  # the key's index gives the order: no sort
        return (
            "SELECT string_agg(int8send(k), ''::bytea), string_agg(int8send(h), ''::bytea) FROM "
            f"(SELECT {key}::bigint AS k, {self.hash_number(columns)} AS h FROM {table} WHERE {condition} "
            f"ORDER BY {key}) s",
            params,
        )

    def estimated_key_stats_sql(self, table: str, key: str) -> tuple[str, Params]:
        """The planner's own estimate: live rows per page at the last VACUUM or ANALYZE times the pages the
        table has now (it follows a load since); NULL for a table never analysed."""
        column = self.ident(key)
        return (
            "SELECT (SELECT CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN (c.reltuples / c.relpages * "
            "(pg_relation_size(c.oid) / current_setting('block_size')::int))::bigint END "
            f"FROM pg_class c WHERE c.oid = to_regclass(%(table)s)), MIN({column}), MAX({column}) FROM {table}",
            {"table": table},
        )

    def span_checksums_sql(self, table: str, columns, pk, bounds, where) -> tuple[str, Params]:
        """One plain aggregate per key range, each an index range scan (a lateral join over arrays of the
        bounds): about the floor's cost per row, where grouping the span's rows by segment number cost a
        fifth more (bench/RESULTS.md). The open first and last ranges are aggregates of their own."""
        key, number, extra = self.ident(pk[0]), self.hash_number(columns), f" AND ({where})" if where else ""
        closed = [(i, lower[0], upper[0]) for i, (lower, upper) in enumerate(bounds) if lower and upper]
        parts, params = [], {}
        if closed:
            numbers, lowers, uppers = (list(column) for column in zip(*closed, strict=True))
            parts.append(
                "SELECT sentinel_bounds.n, sentinel_sums.c, sentinel_sums.h FROM unnest(%(span_n)s::int[], "
                "%(span_lo)s::bigint[], %(span_hi)s::bigint[]) sentinel_bounds(n, lo, hi) CROSS JOIN LATERAL "
                f"(SELECT COUNT(*) AS c, SUM({number}) AS h FROM {table} WHERE {key} >= sentinel_bounds.lo "
                f"AND {key} < sentinel_bounds.hi{extra}) sentinel_sums WHERE sentinel_sums.c > 0"
            )
            params.update(span_n=_int_array(numbers), span_lo=_int_array(lowers), span_hi=_int_array(uppers))
        for i, (lower, upper) in enumerate(bounds):
            if not (lower and upper):
                condition, bound = self.key_range(pk, lower, upper, prefix=f"open{i}_")
                parts.append(
                    f"SELECT {i}, COUNT(*), SUM({number}) FROM {table} WHERE ({condition}){extra} HAVING COUNT(*) > 0"
                )
                params.update(bound)
        return " UNION ALL ".join(parts), params

    def stride_segment(self, key: str, first: int, stride: int, count: int) -> tuple[str, Params]:
        col = self.ident(key)  # an integer column: ``/`` truncates, and ``col >= first`` keeps it >= 0
        return (
            f"CASE WHEN {col} < %(seg_first)s THEN 0 ELSE LEAST(({col} - %(seg_first)s) / %(seg_stride)s + 1, "
            f"{int(count)}) END",
            {"seg_first": int(first), "seg_stride": int(stride)},
        )

    def timestamp_literal(self, value: datetime) -> str:
        kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return f"CAST({self.string(value.isoformat(sep=' '))} AS {kind})"

    def date_literal(self, value: date) -> str:
        return f"CAST({self.string(value.isoformat())} AS DATE)"

    def bytes_literal(self, value: bytes) -> str:
        return f"decode('{value.hex()}', 'hex')"
