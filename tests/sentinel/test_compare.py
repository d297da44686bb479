"""DB Sentinel on a real PostgreSQL pair (two databases on the test server) with injected drift."""

import threading
from datetime import UTC, datetime

import psycopg
import pytest

from include.sentinel.compare import CompareError, TableComparator, _compared_arrays, _packed
from include.sentinel.config import ConfigError, TableSpec, parse_config
from include.sentinel.dialects.postgres import PostgresSentinel
from include.sentinel.sync import sync_sql
from include.sentinel.verify import reverify
from tests.sentinel.conftest import drift


def comparator(pair, *, chunk_size=100, pk=("id",), table="accounts", precision=6):
    spec = TableSpec(table_name=table, primary_key=tuple(pk), chunk_size=chunk_size)
    return TableComparator(
        spec,
        lambda: psycopg.connect(pair.urls["source"]),
        lambda: psycopg.connect(pair.urls["target"]),
        dialect=PostgresSentinel(timestamp_precision=precision),
        max_threads=3,
    )


def test_identical_tables_are_equal_chunk_by_chunk(pair):
    result = comparator(pair).compare()
    assert len(result.chunks) == 10
    assert all(c.equal for c in result.chunks)
    assert result.matching == 1000


def test_drift_is_found_and_classified(pair):
    drift(pair)
    c = comparator(pair)
    result = c.compare()

    assert result.keys("missing_in_target") == [(20,), (999,)]
    assert result.keys("missing_in_source") == [(5000,)]
    assert result.keys("different") == [(3,), (6,), (10,), (500,), (700,), (800,), (801,)]
    # chunks of 100 keys: only those holding a difference were read row by row
    assert [ch.index for ch in result.chunks if not ch.equal] == [0, 4, 6, 7, 8, 9]
    assert c.differing_columns([(3,), (10,), (500,), (700,)], result.columns) == {
        (3,): ["note"],
        (10,): ["name"],
        (500,): ["balance"],
        (700,): ["opened"],
    }


def test_a_comparison_opens_one_connection_per_thread_and_side_and_closes_them(pair):
    """The connections that read the catalog and plan the chunks are left to the comparing threads: ten
    chunks on three threads open at most three connections to each side (five and four before)."""
    opened = {"source": [], "target": []}

    def connect(side):
        def open_side():
            opened[side].append(psycopg.connect(pair.urls[side]))
            return opened[side][-1]

        return open_side

    drift(pair)
    spec = TableSpec(table_name="accounts", primary_key=("id",), chunk_size=100)
    result = TableComparator(spec, connect("source"), connect("target"), max_threads=3).compare()

    assert result.keys("different") == [(3,), (6,), (10,), (500,), (700,), (800,), (801,)]
    assert 1 <= len(opened["source"]) <= 3
    assert 1 <= len(opened["target"]) <= 3
    assert all(conn.closed for conns in opened.values() for conn in conns)


def test_a_table_refused_by_the_catalog_check_leaves_no_connection_open(pair):
    """The catalogs are read on both sides at once: when the source's check fails, the target's read is
    waited for, and every connection either opened is closed (a type mismatch, a table the source lacks)."""
    opened = []

    def connect(side, before=None):
        def open_side():
            if before:
                before()
            opened.append(psycopg.connect(pair.urls[side]))
            return opened[-1]

        return open_side

    pair.sql("target", "ALTER TABLE accounts ALTER COLUMN code TYPE text")
    spec = TableSpec(table_name="accounts", primary_key=("id",))
    with pytest.raises(CompareError, match="incompatible types for column 'code'"):
        TableComparator(spec, connect("source"), connect("target")).compare()
    assert len(opened) == 2 and all(conn.closed for conn in opened)

    opened.clear()
    pair.sql("target", "CREATE TABLE only_dr (id int PRIMARY KEY)")
    closing = threading.Event()  # the target's connection opens once the comparator closes (or after 2 s)
    comparator = TableComparator(
        TableSpec(table_name="only_dr", primary_key=("id",)),
        connect("source"),
        connect("target", before=lambda: closing.wait(2)),
    )
    close = comparator.close
    comparator.close = lambda: (closing.set(), close())
    with pytest.raises(CompareError, match=r"only_dr: not found .* in the source"):
        comparator.compare()
    assert len(opened) == 2 and all(conn.closed for conn in opened)


def test_packed_streams_are_compared_by_position_or_by_key():
    """Keys and hash numbers as ``row_hash_arrays_sql`` packs them (signed big-endian 64-bit integers)."""

    def packed(numbers):
        return _packed(b"".join(n.to_bytes(8, "big", signed=True) for n in numbers))

    keys = packed([1, 2, 3, 5])
    same_keys = _compared_arrays(0, keys, packed([-7, 2**62, 3, 5]), keys, packed([-7, 2**62, 4, 5]))
    assert (same_keys.different, same_keys.missing_in_target, same_keys.missing_in_source) == ([(3,)], [], [])
    assert (same_keys.source_rows, same_keys.target_rows, same_keys.equal) == (4, 4, False)

    by_key = _compared_arrays(1, keys, packed([-7, 9, 3, 5]), packed([2, 3, 4, 5]), packed([8, 3, 4, 5]))
    assert by_key.missing_in_target == [(1,)]
    assert by_key.missing_in_source == [(4,)]
    assert by_key.different == [(2,)]

    empty = _compared_arrays(2, _packed(None), _packed(None), _packed(None), _packed(None))
    assert empty.equal and empty.source_rows == empty.target_rows == 0


def test_timestamp_precision_is_configurable(pair):
    pair.sql("target", "UPDATE accounts SET opened = opened + interval '1 microsecond' WHERE id = 700")
    assert comparator(pair, precision=6).compare().keys("different") == [(700,)]
    assert comparator(pair, precision=3).compare().keys("different") == []


def test_numbers_compare_by_value_not_by_scale(pair):
    for side, kind in (("source", "numeric(12,2)"), ("target", "numeric(14,4)")):
        pair.sql(side, f"CREATE TABLE prices (id int PRIMARY KEY, price {kind})")
        pair.sql(side, "INSERT INTO prices VALUES (1, 10.5), (2, 3)")
    assert comparator(pair, table="prices").compare().keys("different") == []


def test_a_row_changed_during_the_compare_is_left_out_as_in_flight(pair):
    drift(pair)
    c = comparator(pair)
    result = c.compare()
    pair.sql("target", "UPDATE accounts SET name = 'acct 10' WHERE id = 10")  # replication caught up
    pair.sql("target", "INSERT INTO accounts SELECT * FROM (VALUES (20, 'acct 20')) v")  # and this one

    verified = reverify(c, result)

    assert verified.in_flight == [(20,), (10,)]
    assert verified.safe_to_insert == [(999,)]
    assert (10,) not in verified.valid_update_pks


def test_applying_the_sync_sql_makes_the_tables_equal(pair):
    drift(pair)
    c = comparator(pair)
    result = c.compare()
    sql = sync_sql(
        c,
        result,
        reverify(c, result),
        session_id="s1",
        generated_at=datetime(2024, 1, 1, tzinfo=UTC),
        allow_deletes=True,
    )

    assert "-- inserts 2, updates 7, deletes 1, left out in flight 0" in sql
    assert 'UPDATE "accounts" SET "name" = \'changed\'' not in sql
    assert 'UPDATE "accounts" SET "name" = \'acct 10\' WHERE "id" = 10;' in sql
    with psycopg.connect(pair.urls["target"]) as conn:
        conn.execute(sql)

    after = comparator(pair).compare()
    assert all(ch.equal for ch in after.chunks)


def test_deletes_are_commented_out_unless_allowed(pair):
    drift(pair)
    c = comparator(pair)
    result = c.compare()
    sql = sync_sql(c, result, reverify(c, result), session_id="s1", generated_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert '-- DELETE FROM "accounts" WHERE "id" = 5000;' in sql


def test_composite_and_string_keys(pair):
    for side in ("source", "target"):
        pair.sql(side, "CREATE TABLE lines (region text, order_no int, qty int, PRIMARY KEY (region, order_no))")
        pair.sql(
            side, "INSERT INTO lines SELECT r, g, g FROM generate_series(1, 50) g, unnest(ARRAY['eu','us','apac']) r"
        )
    pair.sql("target", "UPDATE lines SET qty = 0 WHERE region = 'us' AND order_no = 7")
    pair.sql("target", "DELETE FROM lines WHERE region = 'apac' AND order_no = 50")

    result = comparator(pair, table="lines", pk=("region", "order_no"), chunk_size=40).compare()

    assert len(result.chunks) == 4
    assert result.keys("different") == [("us", 7)]
    assert result.keys("missing_in_target") == [("apac", 50)]


def test_an_empty_table_and_a_type_mismatch(pair):
    for side, kind in (("source", "int"), ("target", "text")):
        pair.sql(side, f"CREATE TABLE empty_t (id int PRIMARY KEY, v {kind})")
    with pytest.raises(CompareError, match=r"incompatible types for column 'v': integer \(source\) vs text \(target\)"):
        comparator(pair, table="empty_t").compare()
    pair.sql("target", "ALTER TABLE empty_t ALTER COLUMN v TYPE int USING v::int")
    result = comparator(pair, table="empty_t").compare()
    assert [(ch.source_rows, ch.target_rows, ch.equal) for ch in result.chunks] == [(0, 0, True)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tables": []}, "tables: list at least one table"),
        (
            {
                "source_database": {"db_type": "mysql"},
                "target_database": {},
                "tables": [{"table_name": "t", "primary_key": "id"}],
            },
            "source_database.db_type: 'mysql' is not supported",
        ),
        (
            {
                "source_database": {"password": "canary-x"},
                "target_database": {},
                "tables": [{"table_name": "t", "primary_key": "id"}],
            },
            "source_database.password is in the file, where no password belongs: remove it and set password_env",
        ),
        (
            {"source_database": {}, "target_database": {}, "tables": [{"table_name": "T", "chunk_size": 5}]},
            "table T: primary_key is required",
        ),
        (
            {
                "source_database": {},
                "target_database": {},
                "tables": [{"table_name": "T", "primary_key": "ID", "chunk_size": 0}],
            },
            "table T: chunk_size must be a whole number from 1 to 100,000,000, got 0",
        ),
        (
            {
                "source_database": {},
                "target_database": {"db_type": "clickhouse"},
                "tables": [{"table_name": "T", "primary_key": "ID", "target_where": "name LIKE 'A%'"}],
            },
            "table T: target_where holds a '%', which the clickhouse driver would misread; "
            "use startsWith(), endsWith() or position() instead of LIKE",
        ),
    ],
)
def test_config_errors_name_the_table_and_field(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(raw)


def test_a_differing_chunk_reads_rows_only_of_its_differing_segment(pair, monkeypatch):
    pair.sql("target", "UPDATE accounts SET name = 'changed' WHERE id = 250")
    c = comparator(pair)  # chunks of 100 keys, 25 segments of 4 keys each
    read = []
    real = c.dialect.row_hashes_sql

    def spy(table, columns, pk, lower, upper, where):
        read.append((lower, upper))
        return real(table, columns, pk, lower, upper, where)

    monkeypatch.setattr(c.dialect, "row_hashes_sql", spy)
    result = c.compare()

    assert result.keys("different") == [(250,)]
    assert read == [((249,), (253,))] * 2  # one segment of 4 keys, on each side


def test_a_composite_key_chunk_is_narrowed_to_its_differing_segment(pair, monkeypatch):
    for side in ("source", "target"):
        pair.sql(side, "CREATE TABLE lines (region text, order_no int, qty int, PRIMARY KEY (region, order_no))")
        pair.sql(
            side, "INSERT INTO lines SELECT r, g, g FROM generate_series(1, 50) g, unnest(ARRAY['eu','us','apac']) r"
        )
    pair.sql("target", "UPDATE lines SET qty = 0 WHERE region = 'eu' AND order_no = 30")
    c = comparator(pair, table="lines", pk=("region", "order_no"), chunk_size=40)  # 20 segments of 2 keys
    read = []
    real = c.dialect.row_hashes_sql
    monkeypatch.setattr(
        c.dialect,
        "row_hashes_sql",
        lambda t, cols, pk, lo, hi, w: read.append((lo, hi)) or real(t, cols, pk, lo, hi, w),
    )

    result = c.compare()

    assert result.keys("different") == [("eu", 30)]
    # keys sort apac 1..50, eu 1..50, us 1..50: segments start at every other key, so (eu, 29) starts one
    assert read == [(("eu", 29), ("eu", 31))] * 2  # one segment of 2 keys, on each side


def test_a_key_column_in_another_binary_collation_keeps_key_ranges(pair):
    pair.sql("source", "CREATE TABLE codes (code text PRIMARY KEY, v int)")
    pair.sql("target", 'CREATE TABLE codes (code text COLLATE "C" PRIMARY KEY, v int)')
    schema = comparator(pair, table="codes", pk=("code",)).inspect()
    assert schema.collations == {"code": ["libc C.UTF-8", "libc C"]}
    assert schema.chunking == "key ranges"


def test_the_where_filter_applies_to_every_row_read_and_a_drifted_filter_column_is_synced(pair):
    # the filter selects active accounts; on the DR side account 40 was wrongly closed
    for side in ("source", "target"):
        pair.sql(side, "ALTER TABLE accounts ADD COLUMN active boolean NOT NULL DEFAULT true")
        pair.sql(side, "UPDATE accounts SET active = false WHERE id > 900")
    pair.sql("target", "UPDATE accounts SET active = false WHERE id = 40")
    pair.sql("source", "UPDATE accounts SET active = false WHERE id = 41")  # closed at the source only
    pair.sql("target", "UPDATE accounts SET name = 'outside the filter' WHERE id = 950")  # not compared
    spec = TableSpec(table_name="accounts", primary_key=("id",), chunk_size=100, where="active")
    make = lambda: TableComparator(  # noqa: E731
        spec,
        lambda: psycopg.connect(pair.urls["source"]),
        lambda: psycopg.connect(pair.urls["target"]),
        max_threads=2,
    )
    c = make()
    result = c.compare()
    assert (result.keys("missing_in_target"), result.keys("missing_in_source")) == ([(40,)], [(41,)])

    verified = reverify(c, result)
    assert (verified.valid_update_pks, verified.in_flight, verified.safe_to_insert) == ([(40,), (41,)], [], [])
    sql = sync_sql(c, result, verified, session_id="s", generated_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert 'UPDATE "accounts" SET "active" = TRUE WHERE "id" = 40;' in sql
    assert 'UPDATE "accounts" SET "active" = FALSE WHERE "id" = 41;' in sql
    pair.sql("target", sql)
    assert all(ch.equal for ch in make().compare().chunks)
    assert pair.sql("target", "SELECT name FROM accounts WHERE id = 950") == [("outside the filter",)]


def test_a_row_gone_between_reverification_and_the_sql_is_left_out(pair):
    drift(pair)
    c = comparator(pair)
    result = c.compare()
    verified = reverify(c, result)
    pair.sql("source", "DELETE FROM accounts WHERE id IN (999, 500)")  # an insert and an update vanish
    sql = sync_sql(c, result, verified, session_id="s", generated_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert "-- inserts 1, updates 6, deletes 1 (commented out: --allow-deletes), left out in flight 2" in sql


@pytest.mark.parametrize("digits", [1, 2, 4, 5])
def test_every_timestamp_precision_is_honoured(pair, digits):
    step = 10 ** (6 - digits)  # a change just below the compared digits, and one at the last of them
    pair.sql("target", "UPDATE accounts SET opened = date_trunc('second', opened) WHERE id IN (1, 2)")
    pair.sql("source", "UPDATE accounts SET opened = date_trunc('second', opened) WHERE id IN (1, 2)")
    pair.sql("target", f"UPDATE accounts SET opened = opened + interval '{step - 1} microseconds' WHERE id = 1")
    pair.sql("target", f"UPDATE accounts SET opened = opened + interval '{step} microseconds' WHERE id = 2")
    assert comparator(pair, precision=digits).compare().keys("different") == [(2,)]


def test_floats_compare_exactly_or_at_significant_digits(pair):
    for side, value in (("source", 1.0000001), ("target", 1.0000002)):
        pair.sql(side, "CREATE TABLE readings (id int PRIMARY KEY, v double precision, w real)")
        pair.sql(side, "INSERT INTO readings VALUES (1, %s, 2.5), (2, 1e300, NULL), (3, 0, 0)", (value,))
    pair.sql("target", "UPDATE readings SET v = 1.001e300 WHERE id = 2")

    def different(**options):
        spec = TableSpec(table_name="readings", primary_key=("id",), chunk_size=10)
        connect = {side: (lambda u=url: psycopg.connect(u)) for side, url in pair.urls.items()}
        c = TableComparator(spec, connect["source"], connect["target"], dialect=PostgresSentinel(**options))
        return c.compare().keys("different")

    assert different() == [(1,), (2,)]
    assert different(float_digits=6) == [(2,)]  # 1.00000 both sides; 1.00000e+300 vs 1.00100e+300
    assert different(float_digits=3) == []


def test_a_dense_integer_key_is_planned_from_its_range_and_a_sparse_one_from_its_keys(pair, monkeypatch):
    scans = []
    real = PostgresSentinel.boundaries_query
    monkeypatch.setattr(PostgresSentinel, "boundaries_query", lambda self, *a: scans.append(a[0]) or real(self, *a))
    pair.sql("target", "DELETE FROM accounts WHERE id % 3 = 0")  # gaps do not matter: the source plans
    pair.sql("source", "DELETE FROM accounts WHERE id % 3 = 0")
    result = comparator(pair).compare()  # 667 ids over 1..1000: at least half the range is used
    assert scans == [] and result.matching == 667
    assert max(c.source_rows for c in result.chunks) <= 200  # at most twice chunk_size

    for side in ("source", "target"):
        pair.sql(side, "CREATE TABLE sparse (id bigint PRIMARY KEY, v int)")
        pair.sql(side, "INSERT INTO sparse SELECT g * 1000, g FROM generate_series(1, 500) g")
    pair.sql("target", "UPDATE sparse SET v = 0 WHERE id = 250000")
    result = comparator(pair, table="sparse").compare()
    assert scans == ['"sparse"'] and result.keys("different") == [(250000,)]
    assert [c.source_rows for c in result.chunks] == [100] * 5


def test_a_dense_integer_key_numbers_its_segments_by_arithmetic_exactly_at_their_edges(pair, monkeypatch):
    strides = []
    real = PostgresSentinel.segment_checksums_sql
    monkeypatch.setattr(
        PostgresSentinel,
        "segment_checksums_sql",
        lambda self, *a: strides.append(a[-1]) or real(self, *a),
    )
    pair.sql("target", "INSERT INTO accounts (id, name) VALUES (-5, 'below'), (0, 'below')")  # under the plan
    pair.sql("target", "UPDATE accounts SET name = 'edge' WHERE id IN (1, 4, 5, 100, 101, 1000)")
    result = comparator(pair).compare()  # segments of 4 keys: 1-4, 5-8, ...
    assert set(strides) == {4}
    assert result.keys("missing_in_source") == [(-5,), (0,)]
    assert result.keys("different") == [(1,), (4,), (5,), (100,), (101,), (1000,)]


def test_chunks_where_most_rows_differ_are_read_as_key_and_hash_arrays_exactly(pair, monkeypatch):
    arrays = []
    real = PostgresSentinel.row_hash_arrays_sql
    monkeypatch.setattr(PostgresSentinel, "row_hash_arrays_sql", lambda self, *a: arrays.append(a[3]) or real(self, *a))
    pair.sql("target", "UPDATE accounts SET name = 'dense' WHERE id <= 300 AND id % 3 = 0")  # every segment
    pair.sql("target", "DELETE FROM accounts WHERE id IN (250, 251)")
    pair.sql("target", "INSERT INTO accounts (id, name) VALUES (5000, 'new')")
    c = comparator(pair)
    c.max_threads = 1  # chunk by chunk: the chunks after the first dense one are read as arrays
    result = c.compare()
    assert arrays  # chunks 1 and 2 (keys from 101), as arrays on both sides
    assert result.keys("different") == [(k,) for k in range(3, 301, 3) if k not in (250, 251)]
    assert result.keys("missing_in_target") == [(250,), (251,)]
    assert result.keys("missing_in_source") == [(5000,)]


def test_a_filter_with_a_like_pattern_reaches_postgresql_as_written(pair):
    """psycopg formats every query with binds: the filter's % must arrive as %, in every query that reads."""
    drift(pair)
    unfiltered = comparator(pair).compare()
    spec = TableSpec(table_name="accounts", primary_key=("id",), chunk_size=100, where="name LIKE '%5%'")
    c = TableComparator(
        spec, lambda: psycopg.connect(pair.urls["source"]), lambda: psycopg.connect(pair.urls["target"]), max_threads=2
    )
    result = c.compare()
    verified = reverify(c, result)

    named = {k for (k,) in pair.sql("source", "SELECT id FROM accounts WHERE name LIKE '%5%'")}
    named |= {k for (k,) in pair.sql("target", "SELECT id FROM accounts WHERE name LIKE '%5%'")}
    everything = {
        k for kind in ("missing_in_target", "missing_in_source", "different") for (k,) in unfiltered.keys(kind)
    }
    found = {k for kind in ("missing_in_target", "missing_in_source", "different") for (k,) in result.keys(kind)}
    assert found and found == everything & named
    assert not verified.in_flight
