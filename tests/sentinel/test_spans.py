"""Neighbouring chunks of a whole-number key checksummed in one grouped scan of each side (a span): the
same chunk results as chunk by chunk, whatever the drift, filter, gaps of a resumed table or key spacing."""

import psycopg
import pytest

import include.sentinel.compare as compare
from include.sentinel.compare import TableComparator
from include.sentinel.config import TableSpec
from include.sentinel.dialects.postgres import PostgresSentinel
from tests.sentinel.conftest import drift


def comparator(pair, *, table="accounts", where=None, spans=True):
    spec = TableSpec(table_name=table, primary_key=("id",), chunk_size=10, where=where)  # 10 segments of 1 key
    dialect = PostgresSentinel()
    dialect.spans = spans
    connect = {side: (lambda u=url: psycopg.connect(u)) for side, url in pair.urls.items()}
    return TableComparator(spec, connect["source"], connect["target"], dialect=dialect, max_threads=2)


def outcome(comparison):
    return [
        (c.index, c.source_rows, c.target_rows, c.equal, c.missing_in_target, c.missing_in_source, c.different)
        for c in comparison.chunks
    ]


@pytest.fixture
def spied(monkeypatch):
    """The key ranges of the span checksum queries: (lower, upper, number of segments)."""
    scans = []
    real = PostgresSentinel.span_checksums_sql

    def spy(self, table, columns, pk, bounds, where):
        scans.append((bounds[0][0], bounds[-1][1], len(bounds)))
        return real(self, table, columns, pk, bounds, where)

    monkeypatch.setattr(PostgresSentinel, "span_checksums_sql", spy)
    return scans


@pytest.fixture
def reads(monkeypatch):
    """The key ranges of the queries that read (key, row hash) of differing segments' rows."""
    ranges_read = []
    real = PostgresSentinel.row_hashes_in_ranges_sql

    def spy(self, table, columns, pk, ranges, where):
        ranges_read.append(ranges)
        return real(self, table, columns, pk, ranges, where)

    monkeypatch.setattr(PostgresSentinel, "row_hashes_in_ranges_sql", spy)
    return ranges_read


@pytest.mark.parametrize("where", [None, "mod(id, 7) <> 3"])
def test_spans_find_what_chunk_by_chunk_finds_under_a_filter_and_beyond_the_plan(pair, spied, where):
    drift(pair)  # changed, missing on either side, NULL vs '' and 'NULL', a row beyond the source's keys
    pair.sql("target", "INSERT INTO accounts (id, name) VALUES (-5, 'below'), (0, 'below the plan')")
    pair.sql("target", "UPDATE accounts SET name = 'edge' WHERE id IN (1, 10, 11, 100, 101, 990, 1000)")
    pair.sql("target", "UPDATE accounts SET note = 'filtered out' WHERE id = 703")  # id % 7 = 3

    spanned = comparator(pair, where=where).compare()
    assert max(n for _, _, n in spied) > 10  # more segments than one chunk's: the query spans chunks
    assert any(upper is None for _, upper, _ in spied)  # the last chunk, open above (chunk 0 goes alone)
    spied.clear()
    by_chunk = comparator(pair, where=where, spans=False).compare()
    assert spied == []
    assert outcome(spanned) == outcome(by_chunk)

    different = [3, 6, 10, 500, 700, 703, 800, 801, 1, 11, 100, 101, 990, 1000]
    kept = (lambda k: k % 7 != 3) if where else (lambda k: True)
    assert spanned.keys("different") == sorted((k,) for k in different if kept(k))
    assert spanned.keys("missing_in_target") == [(k,) for k in (20, 999) if kept(k)]
    assert spanned.keys("missing_in_source") == [(k,) for k in (-5, 0, 5000) if kept(k)]


def test_a_resumed_table_spans_only_neighbouring_chunks_and_sparse_keys_span_too(pair, spied):
    drift(pair)
    c = comparator(pair)
    chunks = c.plan()
    first = c.compare(chunks)
    done = {r.index: r for r in first.chunks if r.index % 9 == 4}  # compared before the session stopped
    spied.clear()
    resumed = comparator(pair).compare(chunks, done=done)
    assert outcome(resumed) == outcome(first)
    for lower, upper, _ in spied:  # no scan reaches into a chunk already done
        assert not any(
            (lower is None or (d.lower is not None and lower <= d.lower))
            and (upper is None or (d.upper is not None and d.upper <= upper))
            for d in chunks
            if d.index in done
        )

    for side in ("source", "target"):  # keys 1000 apart: thresholds from the keys, not arithmetic
        pair.sql(side, "CREATE TABLE sparse (id bigint PRIMARY KEY, v int)")
        pair.sql(side, "INSERT INTO sparse SELECT g * 1000, g FROM generate_series(1, 500) g")
    pair.sql("target", "UPDATE sparse SET v = 0 WHERE id IN (1000, 250000, 251000, 500000)")
    pair.sql("target", "DELETE FROM sparse WHERE id = 499000")
    spied.clear()
    sparse = comparator(pair, table="sparse").compare()
    assert max(n for _, _, n in spied) > 10
    assert sparse.keys("different") == [(1000,), (250000,), (251000,), (500000,)]
    assert sparse.keys("missing_in_target") == [(499000,)]
    assert outcome(sparse) == outcome(comparator(pair, table="sparse", spans=False).compare())


def test_many_differing_segments_are_read_in_several_queries_and_dense_spans_switch_to_streams(
    pair, monkeypatch, reads
):
    monkeypatch.setattr(compare, "SPAN_ROWS_LOCATED", 3)  # about 3 rows of differing segments per query
    arrays = []
    real_arrays = PostgresSentinel.row_hash_arrays_sql
    monkeypatch.setattr(
        PostgresSentinel, "row_hash_arrays_sql", lambda self, *a: arrays.append(a[3:5]) or real_arrays(self, *a)
    )
    changed = [13, 14, 15, 16, 17, 18, 19, 20, 30, 45]  # chunks 1, 2, 4: fewer than half the segments of a span
    pair.sql("target", "UPDATE accounts SET name = 'x' WHERE id = ANY(%s)", (changed,))
    pair.sql("target", "UPDATE accounts SET name = 'dense' WHERE id > 600")  # every segment from chunk 60 on
    pair.sql("target", "DELETE FROM accounts WHERE id IN (805, 806)")  # keys differ inside a stream
    c = comparator(pair)
    c.max_threads = 1  # span by span: a span found mostly differing turns the next ones into streams
    result = c.compare()
    dense = [k for k in range(601, 1001) if k not in (805, 806)]
    assert result.keys("different") == [(k,) for k in changed + dense]
    assert result.keys("missing_in_target") == [(805,), (806,)]
    assert len([r for r in reads if r[0][0] and r[0][0][0] < 100]) >= 3  # 10 rows, 3 at a time
    assert arrays and min(lower[0] for lower, _ in arrays if lower) > 600  # streams only where most differ
    assert any(upper is None or upper[0] - lower[0] > 10 for lower, upper in arrays)  # several chunks a stream
    assert outcome(result) == outcome(comparator(pair, spans=False).compare())


def test_a_dense_key_is_planned_from_the_statistics_estimate_which_follows_a_load_since(pair, monkeypatch):
    counted = []
    real = PostgresSentinel.key_stats_sql
    monkeypatch.setattr(PostgresSentinel, "key_stats_sql", lambda self, *a: counted.append(a[0]) or real(self, *a))
    for side in ("source", "target"):  # never analysed, for sure: autovacuum may have analysed the fixture's
        pair.sql(side, "ALTER TABLE accounts RENAME TO loaded")
        pair.sql(side, "CREATE TABLE accounts (LIKE loaded INCLUDING ALL) WITH (autovacuum_enabled = off)")
        pair.sql(side, "INSERT INTO accounts SELECT * FROM loaded")
        pair.sql(side, "DROP TABLE loaded")
    never_analysed = comparator(pair).compare()
    assert counted == ['"accounts"'] and never_analysed.matching == 1000  # no estimate yet: every row counted

    for side in ("source", "target"):
        pair.sql(side, "ANALYZE accounts")
        pair.sql(side, "INSERT INTO accounts (id, name) SELECT g, 'loaded after' FROM generate_series(1001, 3000) g")
    pair.sql("target", "UPDATE accounts SET name = 'late' WHERE id IN (2999, 3000)")
    counted.clear()
    scanned = []
    real_scan = PostgresSentinel.boundaries_query
    monkeypatch.setattr(
        PostgresSentinel, "boundaries_query", lambda self, *a: scanned.append(a[0]) or real_scan(self, *a)
    )
    result = comparator(pair).compare()
    assert counted == [] and scanned == []  # 3000 ids in 1..3000: dense by the estimate, not 1000 analysed
    assert result.matching == 2998 and result.keys("different") == [(2999,), (3000,)]
    assert max(c.source_rows for c in result.chunks) <= 20  # the pages added since count: chunks stay small

    counted.clear()
    assert comparator(pair, where="name <> 'x'").compare().matching == 2998  # a filter: its rows counted
    assert counted == ['"accounts"']


def test_a_differing_segment_is_narrowed_to_its_differing_parts_before_rows_are_read(pair, reads):
    for side in ("source", "target"):  # 25 segments of 80 keys a chunk: each narrowed in 20 parts of 4 keys
        pair.sql(side, "CREATE TABLE wide (id bigint PRIMARY KEY, v int)")
        pair.sql(side, "INSERT INTO wide SELECT g, g FROM generate_series(1, 20000) g")
    changed = [3, 4001, 4004, 4005, 6160, 11999, 19999]  # chunk 0 (alone), parts' first and last keys, a part
    pair.sql("target", "UPDATE wide SET v = -v WHERE id = ANY(%s)", (changed,))  # with two, a chunk's last
    pair.sql("target", "DELETE FROM wide WHERE id = 8300")
    pair.sql("target", "INSERT INTO wide VALUES (20500, 0), (-7, 0)")  # beyond the last key, below the first

    def compared(spans: bool):
        spec = TableSpec(table_name="wide", primary_key=("id",), chunk_size=2000)
        dialect = PostgresSentinel()
        dialect.spans = spans
        connect = {side: (lambda u=url: psycopg.connect(u)) for side, url in pair.urls.items()}
        return TableComparator(spec, connect["source"], connect["target"], dialect=dialect, max_threads=2).compare()

    narrowed = compared(spans=True)
    assert narrowed.keys("different") == [(k,) for k in changed]
    assert narrowed.keys("missing_in_target") == [(8300,)]
    assert narrowed.keys("missing_in_source") == [(-7,), (20500,)]
    closed = [(lo[0], hi[0]) for ranges in reads for lo, hi in ranges if lo and hi and lo[0] > 2000]
    assert closed and all(hi - lo <= 8 for lo, hi in closed)  # parts of 4 keys (two when neighbours), not 80
    assert outcome(narrowed) == outcome(compared(spans=False))
