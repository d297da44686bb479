"""The compare engine: plan key-range chunks, compare checksums computed inside both databases at once,
and only for chunks that differ fetch per-row hashes, then full rows only for the differing keys.

A table with few differences costs one checksum scan of each side plus the rows around the differences.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from include.dbapi import lost_connection
from include.redact import describe
from include.sentinel.config import TableSpec
from include.sentinel.dialects.base import FOLDABLE, Key, SentinelDialect
from include.sentinel.dialects.postgres import PostgresSentinel

log = logging.getLogger(__name__)
Connect = Callable[[], Any]  # a DB-API connection (psycopg, oracledb), used as a context manager


def fetch(conn, sql: str, params: Any = None, *, binary: bool = False) -> list[tuple]:
    """``binary``: a psycopg cursor in the binary protocol (whole numbers read without parsing text)."""
    cursor = conn.cursor(binary=True) if binary else conn.cursor()
    try:
        cursor.execute(sql, params if params is not None else {})
        rows = cursor.fetchall()
        if rows and type(rows[0]) is not tuple:  # psycopg, pymssql and oracledb give tuples already
            return [tuple(row) for row in rows]
        return rows
    finally:
        cursor.close()


MAX_KEYS_PER_QUERY = 1000
SEGMENTS_PER_CHUNK = 32  # a differing chunk is narrowed to its differing segments before rows are read
SPAN_CHUNKS = 50  # at most this many neighbouring chunks checksummed in one query per side
SPAN_ROWS_LOCATED = 20_000  # the differing segments of a span are read in queries of about this many rows
STREAM_CHUNKS = 5  # where most segments differ, this many neighbouring chunks read as one pair of arrays
NARROW_PARTS = 20  # a span's differing segment of whole-number keys is checksummed again in this many parts


class CompareError(RuntimeError):
    pass


@dataclass(frozen=True)
class Chunk:
    index: int
    lower: Key | None  # None: open below
    upper: Key | None  # None: open above
    segments: tuple[Key, ...] = ()  # keys where the chunk's inner segments start
    buckets: int = 0  # not 0: the chunk is the whole table in this many buckets of the key's hash (no order)

    def segment_bounds(self) -> list[tuple[Key | None, Key | None]]:
        bounds = [self.lower, *self.segments, self.upper]
        return list(itertools.pairwise(bounds))


@dataclass
class ChunkResult:
    index: int
    source_rows: int
    target_rows: int
    equal: bool
    missing_in_target: list[Key] = field(default_factory=list)
    missing_in_source: list[Key] = field(default_factory=list)
    different: list[Key] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, key_cap: int = 20) -> dict[str, Any]:
        """For XCom and logs: counts, and at most ``key_cap`` keys of each kind."""
        data = asdict(self)
        for name in ("missing_in_target", "missing_in_source", "different"):
            data[f"{name}_count"] = len(data[name])
            data[name] = [list(k) for k in data[name][:key_cap]]
        return data


@dataclass(frozen=True)
class Schema:
    """What the plan learns of a table: the compared columns, the key's columns, and how chunks are made.

    ``collations``: the effective collation of each key column that has one, ``[source, target]``.
    ``by_hash``: the key columns sort differently on the two sides, so chunks are buckets of the key's hash
    rather than key ranges (a key range would hold different rows on each side).
    ``target_columns``, ``target_key_columns``: the same columns with the target's types, when the target is
    another engine (None: the source's types). ``target_names``: source name -> the target's name, for the
    columns the target names otherwise. Columns are named as the source has them everywhere but in the
    queries of the target (``side_columns``, ``side_keys``, ``side_pk``).
    """

    columns: list[tuple[str, str]]
    key_columns: list[tuple[str, str]]
    collations: dict[str, list[str | None]] = field(default_factory=dict)
    by_hash: bool = False
    target_columns: list[tuple[str, str]] | None = None
    target_key_columns: list[tuple[str, str]] | None = None
    target_names: dict[str, str] = field(default_factory=dict)

    def side_name(self, side: str, name: str) -> str:
        """A source column's name as ``side`` has it."""
        return name if side == "source" else self.target_names.get(name, name)

    def side_columns(self, side: str, columns: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """``columns`` (source names) with the names and types ``side`` has."""
        if side == "source":
            return list(columns)
        types = dict(columns if self.target_columns is None else self.target_columns)
        return [(self.side_name(side, name), types[name]) for name, _ in columns]

    def side_keys(self, side: str) -> list[tuple[str, str]]:
        if side == "source":
            return self.key_columns
        keys = self.key_columns if self.target_key_columns is None else self.target_key_columns
        return [(self.side_name(side, name), data_type) for name, data_type in keys]

    def side_pk(self, side: str) -> list[str]:
        """The key's column names as ``side`` has them."""
        return [name for name, _ in self.side_keys(side)]

    @property
    def chunking(self) -> str:
        return "key hash buckets (the key columns sort differently)" if self.by_hash else "key ranges"

    def describe_collations(self) -> str:
        return "; ".join(f"{k}: {s} (source), {t} (target)" for k, (s, t) in self.collations.items()) or "none"


@dataclass
class TableComparison:
    spec: TableSpec
    columns: list[tuple[str, str]]
    chunks: list[ChunkResult]
    seconds: float
    schema: Schema | None = None

    def keys(self, kind: str) -> list[Key]:
        # each chunk's keys are sorted and the chunks are in key order: one run after another, which the
        # sort merges in linear time (a set first would shuffle them: 0.3 s at 100,000 differing keys)
        ordered = sorted(itertools.chain.from_iterable(getattr(c, kind) for c in self.chunks))
        return [key for key, _ in itertools.groupby(ordered)]

    @property
    def matching(self) -> int:
        differing = len(self.keys("missing_in_source")) + len(self.keys("different"))
        return sum(c.target_rows for c in self.chunks) - differing


def _by_part(rows: list[tuple]) -> dict:
    """Rows of (part number, count, hash sum), a part being a segment or a bucket, as number -> (count, sum)."""
    return {r[0]: tuple(r[1:]) for r in rows}


def _counts(part, source: dict, target: dict) -> tuple[int, int]:
    """The rows of ``part`` on each side (``_by_part``; a part either side lacks is empty there)."""
    return (source.get(part) or (0,))[0], (target.get(part) or (0,))[0]


def _summed(index: int, source: dict, target: dict) -> ChunkResult:
    """A chunk's result from each side's parts (``_by_part``): its row counts, equal if every part is."""
    return ChunkResult(
        index, sum(c for c, _ in source.values()), sum(c for c, _ in target.values()), equal=source == target
    )


def _hashes(rows: list[tuple], width: int) -> dict:
    """key -> hash; a one-column key stays a plain value until the differing keys are picked out."""
    if width == 1:
        return dict(rows)
    return {tuple(r[:-1]): r[-1] for r in rows}


def _locate(result: ChunkResult, source: dict, target: dict, width: int) -> None:
    """The differing keys of two ``key -> hash`` maps (set operations on their items: no loop over the
    equal rows here)."""
    wrap = (lambda k: (k,)) if width == 1 else (lambda k: k)
    changed = [k for k, _ in source.items() - target.items()]
    result.missing_in_target = sorted(wrap(k) for k in changed if k not in target)
    result.missing_in_source = sorted(wrap(k) for k in target.keys() - source.keys())
    result.different = sorted(wrap(k) for k in changed if k in target)


def _packed(data: bytes | None) -> np.ndarray:
    """Whole numbers packed as big-endian 64-bit integers (``row_hash_arrays_sql``), as one array."""
    return np.frombuffer(data or b"", dtype=">i8")


def _compared_arrays(index: int, source_keys, source_hashes, target_keys, target_hashes) -> ChunkResult:
    """A chunk's result from its keys and row hashes on each side (numpy arrays, keys ascending): when both
    sides hold the same keys, the differing rows are the positions whose hashes differ; otherwise by key.
    Only the differing keys become Python objects."""
    same_keys = np.array_equal(source_keys, target_keys)
    equal = same_keys and np.array_equal(source_hashes, target_hashes)
    result = ChunkResult(index, len(source_keys), len(target_keys), equal=equal)
    if equal:
        return result
    if same_keys:
        result.different = [(k,) for k in source_keys[source_hashes != target_hashes].tolist()]
        return result
    common, s_at, t_at = np.intersect1d(source_keys, target_keys, assume_unique=True, return_indices=True)
    result.different = [(k,) for k in common[source_hashes[s_at] != target_hashes[t_at]].tolist()]
    result.missing_in_target = [(k,) for k in np.setdiff1d(source_keys, target_keys, assume_unique=True).tolist()]
    result.missing_in_source = [(k,) for k in np.setdiff1d(target_keys, source_keys, assume_unique=True).tolist()]
    return result


def _folded(name: str) -> str:
    """An upper-case name of a database that folds unquoted names to upper case (Oracle, Snowflake) in lower
    case, as the other engine spells it (the dialect upper-cases it again when quoting)."""
    return name.lower() if name.isupper() and FOLDABLE.fullmatch(name.lower()) else name


def _merge_adjacent(ranges: list[tuple[Key | None, Key | None]]) -> list[tuple[Key | None, Key | None]]:
    """Neighbouring segments read as one range: many differences cost one query, not one per segment."""
    merged: list[tuple[Key | None, Key | None]] = []
    for lower, upper in ranges:
        if merged and merged[-1][1] == lower:
            merged[-1] = (merged[-1][0], upper)
        else:
            merged.append((lower, upper))
    return merged


class TableComparator:
    """Compares one table between two databases, of the same kind or not.

    :param source: opens a connection to the source (one per thread).
    :param target: opens a connection to the target.
    :param dialect: the source's dialect; ``target_dialect`` the target's (default: the same). Two dialects
        of different engines must both be portable (the same canonical text on both sides).
    """

    def __init__(
        self,
        spec: TableSpec,
        source: Connect,
        target: Connect,
        *,
        dialect: SentinelDialect | None = None,
        target_dialect: SentinelDialect | None = None,
        max_threads: int = 4,
    ):
        self.spec = spec
        self.source = source
        self.target = target
        self.dialect = dialect or PostgresSentinel()
        self.target_dialect = target_dialect or self.dialect
        self.cross_engine = self.target_dialect.name != self.dialect.name
        if self.cross_engine and not (self.dialect.portable and self.target_dialect.portable):
            raise CompareError(
                f"table {spec.label}: {self.dialect.name} and {self.target_dialect.name} are compared in the "
                "portable canonical text: build both dialects with portable=True"
            )
        self.max_threads = max_threads
        self.table = self.dialect.table_ref(spec.schema, spec.table_name)
        self.target_table = self.target_dialect.table_ref(
            spec.target_schema if spec.target_schema is not None else spec.schema, spec.target_table or spec.table_name
        )
        self._local = threading.local()
        self._opened: list[Any] = []
        self._idle: dict[str, list[Any]] = {"source": [], "target": []}  # opened, held by no thread
        self._lock = threading.Lock()
        self._other_side: ThreadPoolExecutor | None = None
        self.schema: Schema | None = None  # from inspect(), or given with a stored plan
        self._dense = False  # the last chunk compared had differences in most of its segments

    def side(self, side: str) -> tuple[SentinelDialect, str, str | None]:
        """The dialect, quoted table and filter of ``side`` (source | target)."""
        if side == "source":
            return self.dialect, self.table, self.dialect.filter_text(self.spec.where)
        where = self.spec.target_where if self.spec.target_where is not None else self.spec.where
        return self.target_dialect, self.target_table, self.target_dialect.filter_text(where)

    def _side_of(self, connect: Connect) -> str:
        return "target" if connect is self.target and connect is not self.source else "source"

    def _open(self, connect: Connect, side: str | None = None):
        """A new connection in autocommit (no long transaction on prod), set up for the dialect."""
        conn = connect()
        if not callable(getattr(conn, "autocommit", None)):  # pymssql's is a method (set when connecting)
            conn.autocommit = True
        dialect = self.side(side or self._side_of(connect))[0]
        for statement in dialect.session_setup:
            cursor = conn.cursor()
            cursor.execute(statement)
            cursor.close()
        return conn

    def _take(self, side: str):
        """An idle connection to ``side``, or a new one (kept until ``close``)."""
        with self._lock:
            if self._idle[side]:
                return self._idle[side].pop()
        conn = self._open(self.source if side == "source" else self.target, side)
        with self._lock:
            self._opened.append(conn)
        return conn

    def _connection(self, side: str):
        """This thread's connection to one side, taken once."""
        conn = getattr(self._local, side, None)
        if conn is None:
            conn = self._take(side)
            setattr(self._local, side, conn)
        return conn

    @contextlib.contextmanager
    def _borrowed(self, side: str) -> Iterator[Any]:
        """A connection for one step (the catalog, the plan), left open for a comparing thread: a new
        connection costs the database a backend (some 10 ms of its CPU). One that failed is not reused."""
        conn = self._take(side)
        yield conn
        with self._lock:
            self._idle[side].append(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
            self._idle = {"source": [], "target": []}
        self._local = threading.local()
        if self._other_side is not None:
            self._other_side.shutdown()
            self._other_side = None

    # -- plan ---------------------------------------------------------------------------------------

    def columns(self) -> list[tuple[str, str]]:
        return self.inspect().columns

    def _target_names(self) -> dict[str, str]:
        """``spec.target_names`` spelled as the target's catalog is read (folded as its names are)."""
        fold = self.cross_engine and self.target_dialect.folds_to_upper
        return {s: _folded(t) if fold else t for s, t in self.spec.target_names.items()}

    def _catalog(self, side: str, names: dict[str, str]) -> dict[str, tuple[str, str | None]]:
        """``side``'s columns: name -> (type, collation), the target's under their source names."""
        dialect = self.side(side)[0]
        schema, table = self.spec.schema, self.spec.table_name
        if side == "target":
            schema = self.spec.target_schema if self.spec.target_schema is not None else schema
            schema, table = schema or None, self.spec.target_table or table  # '': the default schema
        with self._borrowed(side) as conn:
            rows = dialect.column_rows(fetch(conn, *dialect.columns_query(schema, table)))
        if not rows:
            raise CompareError(
                f"table {self.spec.label}: not found (or no columns visible) in the {side}; check table_name "
                "and schema in the config, and that the user may read the table"
            )
        if self.cross_engine and dialect.folds_to_upper:
            rows = [(_folded(name), data_type, collation) for name, data_type, collation in rows]
        if side == "target" and names:
            # a target column that has a renamed source column's own name is not the one compared
            back = {t: s for s, t in names.items()}
            rows = [(back.get(n, n), t, c) for n, t, c in rows if n in back or n not in names]
        return {name: (data_type, collation) for name, data_type, collation in rows}

    def inspect(self) -> Schema:
        """The compared columns (on both sides, minus the keys and the excluded; types must agree), and the
        effective collation of each key column on each side: when they sort differently, chunks are made
        of key-hash buckets instead of key ranges. Names are the source's; the target's own names of
        renamed columns (``target_names``) go into the schema for its queries."""
        names = self._target_names()
        source, target = self._on_both(lambda side: self._catalog(side, names))

        def named(name: str, side: str) -> str:  # a column as ``side`` has it, for messages
            return names.get(name, name) if side == "target" else name

        for name in self.spec.primary_key:
            if name not in source or name not in target:
                side = "source" if name not in source else "target"
                there = ", ".join(sorted(named(c, side) for c in (source if side == "source" else target)))
                raise CompareError(
                    f"table {self.spec.label}: primary key column {named(name, side)!r} not found in the {side}; "
                    f"fix primary_key{'' if side == 'source' else ' or target_names'} (columns there: {there})"
                )
        collations = {k: [source[k][1], target[k][1]] for k in self.spec.primary_key if source[k][1] or target[k][1]}
        by_hash = any(not self.dialect.sorts_alike(s, t) for s, t in collations.values())
        if self.cross_engine:
            # two engines order text keys each their own way (and bind them each their own way): key ranges
            # only for whole-number keys, buckets of the key's hash otherwise
            by_hash = not all(
                self.dialect.integer_key(source[k][0]) and self.target_dialect.integer_key(target[k][0])
                for k in self.spec.primary_key
            )
        wanted = self.spec.columns or [c for c in source if c in target]
        columns = []
        for name in wanted:
            if name in self.spec.primary_key or name in self.spec.exclude_columns:
                continue
            if name not in source or name not in target:
                side = "target" if name in source else "source"
                raise CompareError(
                    f"table {self.spec.label}: column {named(name, side)!r} is missing in the {side}; "
                    "remove it from columns, add it to exclude_columns or fix target_names"
                )
            if source[name][0] != target[name][0] and not self.cross_engine:
                also = f" (the target's {names[name]!r})" if name in names else ""
                raise CompareError(
                    f"table {self.spec.label}: incompatible types for column {name!r}{also}: "
                    f"{source[name][0]} (source) vs {target[name][0]} (target); add it to exclude_columns "
                    "or align the types"
                )
            columns.append((name, source[name][0]))
        keys = [(k, source[k][0]) for k in self.spec.primary_key]
        target_columns = target_keys = None
        if self.cross_engine:
            target_columns = [(name, target[name][0]) for name, _ in columns]
            target_keys = [(k, target[k][0]) for k in self.spec.primary_key]
        compared = {n for n, _ in (*columns, *keys)}
        renamed = {s: t for s, t in names.items() if s in compared and s != t}
        self.schema = Schema(columns, keys, collations, by_hash, target_columns, target_keys, renamed)
        if by_hash:
            why = (
                "the key is not whole numbers on both engines"
                if self.cross_engine
                else f"key collations differ ({self.schema.describe_collations()})"
            )
            log.warning("%s: %s: chunks are key-hash buckets", self.spec.label, why)
        return self.schema

    def plan(self) -> list[Chunk]:
        """Chunks of ``chunk_size`` source keys, each cut into segments, from one ordered scan of the keys.
        The first chunk is open below and the last open above, so that target rows outside the source's
        key range are compared too."""
        # segments per chunk: the largest divisor of chunk_size up to SEGMENTS_PER_CHUNK, so that chunks
        # keep exactly the configured size
        size = self.spec.chunk_size
        per_chunk = max(d for d in range(1, SEGMENTS_PER_CHUNK + 1) if size % d == 0)
        step = size // per_chunk
        if (self.schema or self.inspect()).by_hash:
            # one chunk of buckets about the size of a segment: one grouped scan of each side, then only the
            # rows of the differing buckets
            with self._borrowed("source") as conn:
                [(count,)] = fetch(conn, *self.dialect.row_count_sql(self.table, self.side("source")[2]))
            return [Chunk(0, None, None, (), buckets=max(1, -(-int(count) // step)))]
        with self._borrowed("source") as conn:
            starts = self._dense_integer_starts(conn, step)
            if starts is None:
                starts = fetch(
                    conn,
                    *self.dialect.boundaries_query(self.table, self.spec.primary_key, self.side("source")[2], step),
                )
        groups = [starts[i : i + per_chunk] for i in range(0, len(starts), per_chunk)] or [[]]
        chunks = []
        for i, group in enumerate(groups):
            upper = groups[i + 1][0] if i + 1 < len(groups) else None
            chunks.append(Chunk(i, None if i == 0 else group[0], upper, tuple(group[1:])))
        return chunks

    def _dense_integer_starts(self, conn, step: int) -> list[Key] | None:
        """Segment starts of a single integer key that fills at least half of its range (ids from a
        sequence), computed from its count, minimum and maximum instead of an ordered scan of every key: a
        chunk then holds at most twice ``chunk_size`` rows. None for any other key.

        Without a ``where`` filter the count is the database's estimate where it has one (counting every row
        cost a tenth of the comparison at 1,000,000 rows): a chunk's rows then follow the estimate, which
        changes their size, never which rows are compared (chunks are key ranges, the first and last open)."""
        if len(self.schema.key_columns) != 1 or not self.dialect.integer_key(self.schema.key_columns[0][1]):
            return None
        name = self.schema.key_columns[0][0]
        estimated = None if self.spec.where else self.dialect.estimated_key_stats_sql(self.table, name)
        [(count, low, high)] = fetch(conn, *estimated) if estimated else [(None, None, None)]
        if not count:
            [(count, low, high)] = fetch(conn, *self.dialect.key_stats_sql(self.table, name, self.side("source")[2]))
        if not count:
            return []
        span = int(high) - int(low) + 1
        if span > 2 * count:
            return None
        return [(k,) for k in range(int(low), int(high) + 1, max(1, round(step * span / count)))]

    # -- compare ------------------------------------------------------------------------------------

    def _both(self, build, *, binary: bool = False) -> tuple[list[tuple], list[tuple]]:
        """Run a query on both sides at the same time: the target's in a helper thread. ``build(dialect,
        table, where, typed, pk)`` makes each side's query: ``typed(columns)`` gives the columns with the
        side's names and types, ``pk`` the key's names there; ``binary``: rows of whole numbers only, read
        in the binary protocol where the dialect's driver has it."""

        def run(side: str):
            dialect, table, where = self.side(side)
            query = build(dialect, table, where, lambda cols: self._typed(side, cols), self.schema.side_pk(side))
            return self._fetch(side, query, binary=binary and dialect.binary_transfer)

        return self._on_both(run)

    def _on_both(self, run: Callable[[str], Any]) -> tuple[Any, Any]:
        """``run("source")`` in this thread and ``run("target")`` in a helper thread, at the same time."""
        if self._other_side is None:
            with self._lock:
                self._other_side = self._other_side or ThreadPoolExecutor(self.max_threads)
        target = self._other_side.submit(run, "target")
        try:
            source = run("source")
        except BaseException:
            wait([target])  # raised once the target is done: no connection of it is opened after close()
            raise
        return source, target.result()

    def _fetch(self, side: str, query, *, binary: bool = False) -> list[tuple]:
        try:
            return fetch(self._connection(side), *query, binary=binary)
        except Exception as exc:
            if not lost_connection(exc):
                raise
            raise CompareError(
                f"table {self.spec.label}: the {side} database could not be reached or stopped answering "
                f"({describe(exc)}); the chunks compared before are checkpointed: once it answers, resume "
                "with --resume <session> (see --list-sessions)"
            ) from exc

    def _typed(self, side: str, columns):
        """Columns (or the key's columns, given as "keys") with the side's names and types."""
        if columns == "keys":
            return self.schema.side_keys(side)
        return self.schema.side_columns(side, columns)

    def compare_chunk(self, chunk: Chunk, columns: list[tuple[str, str]]) -> ChunkResult:
        started = time.monotonic()
        if chunk.buckets:
            result = self._compare_buckets(chunk, columns)
        elif self._dense and chunk.segments:
            result = self._compare_stream(chunk, columns)
        else:
            result = self._compare_segments(chunk, columns)
        result.seconds = round(time.monotonic() - started, 4)
        log.info("%s chunk %d: %s", self.spec.label, chunk.index, "equal" if result.equal else "differs")
        return result

    def compare_chunks(self, chunks: Sequence[Chunk], columns) -> Iterator[ChunkResult]:
        """Compare ``chunks``, ``max_threads`` at a time, yielding each result in this thread as it is ready.

        Where the key is one whole-number column and the dialects can, runs of neighbouring chunks (spans)
        are checksummed in one query per side: a query per chunk cost the server about half again the
        floor's CPU per row (bench/RESULTS.md). The first chunk goes alone, first: whether most of its
        segments differ decides how the others are read."""
        pending = list(chunks)
        pool = ThreadPoolExecutor(self.max_threads)
        try:
            if self._spannable() and len(pending) > 1:
                yield pool.submit(self.compare_chunk, pending[0], columns).result()
                groups = self._spans(pending[1:])
            else:
                groups = [[c] for c in pending]
            futures = [pool.submit(self._compare_group, group, columns) for group in groups]
            for future in as_completed(futures):
                yield from future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # Ctrl+C, a failed chunk: no more queries
            raise
        finally:
            pool.shutdown()

    def _spannable(self) -> bool:
        both = self.dialect.spans and self.target_dialect.spans
        return both and not self.schema.by_hash and self._integer_key()

    def _spans(self, chunks: list[Chunk]) -> list[list[Chunk]]:
        """Runs of neighbouring chunks (a resumed table may have gaps), cut so that every thread gets
        several spans (the last ones do not leave the others idle for long)."""
        size = max(1, min(SPAN_CHUNKS, -(-len(chunks) // (4 * self.max_threads))))
        runs: list[list[Chunk]] = []
        for chunk in chunks:
            last = runs[-1][-1] if runs else None
            if (
                last is not None
                and len(runs[-1]) < size
                and last.index + 1 == chunk.index
                and last.upper == chunk.lower
            ):
                runs[-1].append(chunk)
            else:
                runs.append([chunk])
        return runs

    def _compare_group(self, group: list[Chunk], columns) -> list[ChunkResult]:
        if len(group) == 1:
            return [self.compare_chunk(group[0], columns)]
        if not self._dense:
            return self._compare_span(group, columns)
        # most segments differ: a few chunks at a time read as one stream (arrays of keys and hashes)
        results = []
        for start in range(0, len(group), STREAM_CHUNKS):
            part = group[start : start + STREAM_CHUNKS]
            if not self._dense:  # a stream found few differences: checksums first again
                results.extend(
                    self._compare_span(part, columns) if len(part) > 1 else [self.compare_chunk(part[0], columns)]
                )
            else:
                results.extend(self._stream_span(part, columns))
        return results

    def _stream_span(self, group: list[Chunk], columns) -> list[ChunkResult]:
        """Neighbouring chunks' keys and row hashes as one pair of arrays per side, cut back into chunks at
        their first keys (the arrays are in key order): a query per few chunks rather than per chunk."""
        started = time.monotonic()
        source_keys, source_hashes, target_keys, target_hashes = self._streams(group[0].lower, group[-1].upper, columns)
        cuts = [chunk.lower[0] for chunk in group[1:]]
        s_at = [0, *np.searchsorted(source_keys, cuts).tolist(), len(source_keys)]
        t_at = [0, *np.searchsorted(target_keys, cuts).tolist(), len(target_keys)]
        results, differences, segments = [], 0, 0
        seconds = round((time.monotonic() - started) / len(group), 4)
        for j, chunk in enumerate(group):
            s, t = slice(s_at[j], s_at[j + 1]), slice(t_at[j], t_at[j + 1])
            result = _compared_arrays(chunk.index, source_keys[s], source_hashes[s], target_keys[t], target_hashes[t])
            result.seconds = seconds
            results.append(result)
            differences += len(result.missing_in_target) + len(result.missing_in_source) + len(result.different)
            segments += len(chunk.segments) + 1
        self._dense = differences > segments // 2
        log.info("%s chunks %d to %d read as streams", self.spec.label, group[0].index, group[-1].index)
        return results

    def _compare_span(self, group: list[Chunk], columns) -> list[ChunkResult]:
        """Checksums of every segment of neighbouring chunks from one query per side (segments numbered
        across the span), then (key, hash) of the differing segments, several segments per query; each
        differing key goes back to its chunk by the chunks' first keys."""
        started = time.monotonic()
        bounds: list[tuple[Key | None, Key | None]] = []
        offsets = []  # the span's number of each chunk's first segment
        for chunk in group:
            offsets.append(len(bounds))
            bounds.extend(chunk.segment_bounds())
        src, tgt = self._span_sums(bounds, columns)
        results, differing = [], []  # differing: (segment's bounds, rows)
        for chunk, first in zip(group, offsets, strict=True):
            numbers = range(first, first + len(chunk.segments) + 1)
            segment_bounds = chunk.segment_bounds()
            counts = [_counts(b, src, tgt) for b in numbers]
            changed = [b for b in numbers if src.get(b) != tgt.get(b)]
            results.append(
                ChunkResult(chunk.index, sum(s for s, _ in counts), sum(t for _, t in counts), equal=not changed)
            )
            differing.extend((segment_bounds[b - first], max(counts[b - first])) for b in changed)
        # most segments differ: the next chunks are read as one stream each, without checksums first
        self._dense = len(differing) > len(bounds) // 2
        if differing and not self._dense:
            differing = self._narrowed(differing, columns)
        lowers = [chunk.lower[0] for chunk in group[1:]]  # whole numbers: Python orders them as the database
        for batch in self._batches(differing):
            located, ranges = ChunkResult(-1, 0, 0, equal=False), _merge_adjacent(batch)
            source_rows, target_rows = self._both(
                lambda d, table, where, typed, pk, ranges=ranges: d.row_hashes_in_ranges_sql(
                    table, typed(columns), pk, ranges, where
                ),
                binary=True,
            )
            _locate(located, _hashes(source_rows, 1), _hashes(target_rows, 1), 1)
            for kind in ("missing_in_target", "missing_in_source", "different"):
                for key in getattr(located, kind):
                    getattr(results[bisect.bisect_right(lowers, key[0])], kind).append(key)
        seconds = round((time.monotonic() - started) / len(group), 4)
        for result in results:
            result.seconds = seconds
            for kind in ("missing_in_target", "missing_in_source", "different"):
                getattr(result, kind).sort()
        log.info(
            "%s chunks %d to %d: %d differ",
            self.spec.label,
            group[0].index,
            group[-1].index,
            sum(not r.equal for r in results),
        )
        return results

    def _span_sums(self, bounds: list[tuple[Key | None, Key | None]], columns) -> tuple[dict, dict]:
        """Each side's (count, hash sum) of every non-empty key range of ``bounds``, by its number there."""
        source_parts, target_parts = self._both(
            lambda d, table, where, typed, pk: d.span_checksums_sql(table, typed(columns), pk, bounds, where)
        )
        return _by_part(source_parts), _by_part(target_parts)

    def _narrowed(self, differing: list[tuple[tuple, int]], columns) -> list[tuple[tuple, int]]:
        """The differing segments' parts that differ: each closed segment of at least ``2 * NARROW_PARTS``
        keys cut into ``NARROW_PARTS`` key ranges, all checksummed in one more span query per side. A
        difference or two in a segment of 400 rows then reads some 20 rows per side, not 400 (a twentieth
        of the rows located, which were 4% of the table at 0.01% differences, and of the client's memory)."""
        parts: list[tuple[tuple, tuple]] = []
        kept: list[tuple[tuple, int]] = []
        for (lower, upper), rows in differing:
            width = upper[0] - lower[0] if lower and upper else 0
            if width < 2 * NARROW_PARTS:
                kept.append(((lower, upper), rows))
                continue
            cuts = [lower[0] + width * i // NARROW_PARTS for i in range(NARROW_PARTS + 1)]
            parts.extend(((a,), (b,)) for a, b in itertools.pairwise(cuts))
        if not parts:
            return differing
        src, tgt = self._span_sums(parts, columns)
        for n, bounds in enumerate(parts):
            if src.get(n) != tgt.get(n):
                kept.append((bounds, max(_counts(n, src, tgt))))
        return sorted(kept, key=lambda part: part[0][0] or (-math.inf,))

    @staticmethod
    def _batches(differing: list[tuple[tuple, int]]) -> Iterator[list[tuple]]:
        """Segment bounds in groups of about ``SPAN_ROWS_LOCATED`` rows (at least one segment each)."""
        batch, rows = [], 0
        for bounds, size in differing:
            if batch and rows + size > SPAN_ROWS_LOCATED:
                yield batch
                batch, rows = [], 0
            batch.append(bounds)
            rows += size
        if batch:
            yield batch

    def _compare_segments(self, chunk: Chunk, columns) -> ChunkResult:
        """Checksums per segment in one scan of each side; then (key, hash) of the differing segments."""
        width = len(self.spec.primary_key)
        if chunk.segments:
            stride = self._stride(chunk)
            source_parts, target_parts = self._both(
                lambda d, table, where, typed, pk: d.segment_checksums_sql(
                    table, typed(columns), pk, chunk.lower, chunk.upper, where, chunk.segments, stride
                )
            )
            src, tgt = _by_part(source_parts), _by_part(target_parts)
            result = _summed(chunk.index, src, tgt)
            bounds = chunk.segment_bounds()
            # width_bucket numbers the segment before the first threshold 0
            differing_segments = [b for b in sorted(set(src) | set(tgt)) if src.get(b) != tgt.get(b)]
            # most segments differ: the next chunks are read as one stream each, without checksums first
            self._dense = len(differing_segments) > len(bounds) // 2
            if self._dense:
                return self._compare_stream(chunk, columns)
            differing = _merge_adjacent([bounds[b] for b in differing_segments])
        else:
            (src_total,), (tgt_total,) = self._both(
                lambda d, table, where, typed, pk: d.checksum_sql(
                    table, typed(columns), pk, chunk.lower, chunk.upper, where
                )
            )
            result = ChunkResult(chunk.index, src_total[0], tgt_total[0], equal=tuple(src_total) == tuple(tgt_total))
            differing = [(chunk.lower, chunk.upper)]
        if not result.equal:
            source_hashes, target_hashes = {}, {}
            for lower, upper in differing:
                source_rows, target_rows = self._both(
                    lambda d, table, where, typed, pk, lo=lower, hi=upper: d.row_hashes_sql(
                        table, typed(columns), pk, lo, hi, where
                    ),
                    binary=self._integer_key(),
                )
                source_hashes.update(_hashes(source_rows, width))
                target_hashes.update(_hashes(target_rows, width))
            _locate(result, source_hashes, target_hashes, width)
        return result

    def _integer_key(self) -> bool:
        """The key is one whole-number column on both sides."""
        keys = self.schema.key_columns
        if len(keys) != 1:
            return False
        target = self.schema.side_keys("target")[0][1]
        return self.dialect.integer_key(keys[0][1]) and self.target_dialect.integer_key(target)

    def _stride(self, chunk: Chunk) -> int | None:
        """The spacing of the chunk's segment starts when the key is one whole-number column on both sides
        and they are evenly spaced (a dense key's plan): segments are then numbered by arithmetic."""
        if len(chunk.segments) < 2 or not self._integer_key():
            return None
        starts = [s[0] for s in chunk.segments]
        if not all(type(s) is int for s in starts):
            return None
        stride = starts[1] - starts[0]
        evenly = stride > 0 and all(b - a == stride for a, b in itertools.pairwise(starts))
        return stride if evenly else None

    def _compare_stream(self, chunk: Chunk, columns) -> ChunkResult:
        """(key, hash) of every row of the chunk from both sides at once, compared here: cheaper than
        checksums when most segments differ (the chunk is read once, not twice)."""
        width = len(self.spec.primary_key)
        if self._integer_key() and self.dialect.binary_transfer and self.target_dialect.binary_transfer:
            result = self._compare_arrays(chunk, columns)
        else:
            source_rows, target_rows = self._both(
                lambda d, table, where, typed, pk: d.row_hashes_sql(
                    table, typed(columns), pk, chunk.lower, chunk.upper, where
                )
            )
            source_hashes, target_hashes = _hashes(source_rows, width), _hashes(target_rows, width)
            equal = source_hashes == target_hashes
            result = ChunkResult(chunk.index, len(source_hashes), len(target_hashes), equal=equal)
            if not result.equal:
                _locate(result, source_hashes, target_hashes, width)
        segments = len(chunk.segments) + 1
        self._dense = len(result.missing_in_target) + len(result.missing_in_source) + len(result.different) > (
            segments // 2
        )
        return result

    def _streams(self, lower: Key | None, upper: Key | None, columns):
        """Each side's keys and row hash numbers from ``lower`` to ``upper``, in key order, as numpy arrays
        (an integer key; ``row_hash_arrays_sql`` packs them into bytea, read in the binary protocol):
        source keys, source hashes, target keys, target hashes."""
        (source,), (target,) = self._both(
            lambda d, table, where, typed, pk: d.row_hash_arrays_sql(table, typed(columns), pk, lower, upper, where),
            binary=True,
        )
        return (*map(_packed, source), *map(_packed, target))

    def _compare_arrays(self, chunk: Chunk, columns) -> ChunkResult:
        """The chunk's keys and row hashes from both sides (``_streams``), compared by position when both
        sides hold the same keys, by key otherwise; only the differing keys become Python objects."""
        return _compared_arrays(chunk.index, *self._streams(chunk.lower, chunk.upper, columns))

    def _compare_buckets(self, chunk: Chunk, columns) -> ChunkResult:
        """The table in buckets of its key's hash: count and hash sum per bucket from one scan of each side,
        then (key, hash) of the rows in the differing buckets (of every row when most differ)."""
        keys, buckets = self.schema.key_columns, chunk.buckets
        source_parts, target_parts = self._both(
            lambda d, table, where, typed, _: d.bucket_checksums_sql(
                table, typed(columns), typed("keys"), buckets, where
            )
        )
        src, tgt = _by_part(source_parts), _by_part(target_parts)
        result = _summed(chunk.index, src, tgt)
        if not result.equal:
            differing = sorted(b for b in set(src) | set(tgt) if src.get(b) != tgt.get(b))
            # most buckets differ (or more than the dialect can list): every row's (key, hash) instead
            listed = [d.max_buckets_listed or buckets for d in (self.dialect, self.target_dialect)]
            limit = min(*listed, buckets // 2)
            wanted = None if len(differing) > limit else differing
            source_rows, target_rows = self._both(
                lambda d, table, where, typed, _: d.bucket_hashes_sql(
                    table, typed(columns), typed("keys"), buckets, wanted, where
                )
            )
            _locate(result, _hashes(source_rows, len(keys)), _hashes(target_rows, len(keys)), len(keys))
        return result

    def compare(
        self,
        chunks: Sequence[Chunk] | None = None,
        *,
        done: dict[int, ChunkResult] | None = None,
        on_chunk: Callable[[ChunkResult], None] | None = None,
    ) -> TableComparison:
        """Compare every chunk (``max_threads`` at a time) except those already ``done``; ``on_chunk`` is
        called, in this thread, as each one finishes (to checkpoint it)."""
        started = time.monotonic()
        results = dict(done or {})
        try:
            schema = self.inspect()
            columns = schema.columns
            chunks = self.plan() if chunks is None else chunks
            todo = [c for c in chunks if c.index not in results]
            with contextlib.closing(self.compare_chunks(todo, columns)) as compared:
                for result in compared:
                    results[result.index] = result
                    if on_chunk:
                        on_chunk(result)
        finally:
            self.close()
        ordered = [results[c.index] for c in chunks]
        return TableComparison(self.spec, columns, ordered, round(time.monotonic() - started, 3), schema)

    # -- rows of the differing keys -----------------------------------------------------------------

    def rows(
        self, connect: Connect, keys: Sequence[Key], columns, *, canonical: bool, filtered: bool = True
    ) -> dict[Key, tuple]:
        """Rows by key (raw values, or the canonical text the hashes are made of), in batches; ``filtered``:
        only rows the table's ``where`` filter selects, as the checksums see them."""
        found: dict[Key, tuple] = {}
        side = self._side_of(connect)
        dialect, table, where = self.side(side)
        where = where if filtered else None
        pk = self.schema.side_pk(side) if self.schema else self.spec.primary_key
        columns = self.schema.side_columns(side, columns) if self.schema else columns
        build = dialect.canonical_rows_query if canonical else dialect.raw_rows_query
        with contextlib.closing(self._open(connect, side)) as conn:
            for start in range(0, len(keys), MAX_KEYS_PER_QUERY):
                batch = keys[start : start + MAX_KEYS_PER_QUERY]
                for row in fetch(conn, *build(table, columns, pk, batch, where)):
                    found[tuple(row[: len(pk)])] = tuple(row[len(pk) :])
        return found

    def differing_columns(self, keys: Sequence[Key], columns) -> dict[Key, list[str]]:
        """The columns in which each key's row differs (the whole rows, inside the filter or not)."""
        source = self.rows(self.source, keys, columns, canonical=True, filtered=False)
        target = self.rows(self.target, keys, columns, canonical=True, filtered=False)
        return {
            key: [name for (name, _), a, b in zip(columns, source[key], target[key], strict=True) if a != b]
            for key in keys
            if key in source and key in target
        }
