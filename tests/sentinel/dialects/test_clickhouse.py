"""The ClickHouse dialect end to end on chdb (ClickHouse embedded in-process): two databases stand for prod
and DR; the comparator, re-verification and the sync file run for real.

Parameters are bound by clickhouse-connect's own client-side binding (``finalize_query``), so the SQL that
reaches chdb is the SQL the production driver would send.
"""

import uuid
from datetime import UTC, datetime

import chdb
import pytest
from clickhouse_connect.driver.binding import finalize_query

from include.sentinel.compare import TableComparator
from include.sentinel.config import TableSpec
from include.sentinel.dialects.clickhouse import ClickHouseSentinel, inner_type
from include.sentinel.sync import sync_sql
from include.sentinel.verify import reverify

SCHEMA = (
    "CREATE TABLE {db}.accounts (id Int64, name Nullable(String), note LowCardinality(Nullable(String)), "
    "balance Decimal(12, 2), opened DateTime64(6, 'UTC'), score Float64) ENGINE = MergeTree ORDER BY id"
)
ROWS = (
    "INSERT INTO {db}.accounts SELECT number + 1, concat('acct ', toString(number + 1)), "
    "if((number + 1) % 3 = 0, NULL, concat('n', toString(number + 1))), (number + 1) * 1.25, "
    "toDateTime64('2024-01-01 00:00:00', 6, 'UTC') + toIntervalMicrosecond((number + 1) * 60000123), "
    "(number + 1) / 7 FROM numbers(1000)"
)


class Cursor:
    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, sql, params=None):
        self._cursor.execute(finalize_query(sql, params))

    def fetchall(self):
        return self._cursor.fetchall()

    def close(self):
        self._cursor.close()


class Connection:
    """A chdb connection whose current database is one side; binds like clickhouse-connect."""

    def __init__(self, database):
        self._conn = chdb.connect(":memory:")
        self.cursor().execute(f"USE {database}")

    def cursor(self):
        return Cursor(self._conn.cursor())

    def close(self):
        pass  # the embedded server is shared by both sides; the module fixture ends it

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture(scope="module")
def server():
    conn = chdb.connect(":memory:")
    yield conn
    conn.close()


@pytest.fixture
def sides(server):
    names = {side: f"{side}_{uuid.uuid4().hex[:8]}" for side in ("prod", "dr")}
    cursor = server.cursor()

    def sql(side, statement):
        cursor.execute(statement.format(db=names[side]))
        return cursor.fetchall()

    for side, db in names.items():
        cursor.execute(f"CREATE DATABASE {db}")
        sql(side, SCHEMA)
        sql(side, ROWS)
    sides.sql = sql
    sides.names = names
    return sides


def comparator(sides, chunk_size=100, **options):
    return TableComparator(
        TableSpec(table_name="accounts", primary_key=("id",), chunk_size=chunk_size),
        lambda: Connection(sides.names["prod"]),
        lambda: Connection(sides.names["dr"]),
        dialect=ClickHouseSentinel(**options),
        max_threads=1,
    )


def drift(sides):
    dr = lambda q: sides.sql("dr", q)  # noqa: E731
    dr("ALTER TABLE {db}.accounts UPDATE name = 'changed' WHERE id = 10 SETTINGS mutations_sync = 2")
    dr("DELETE FROM {db}.accounts WHERE id IN (20, 999)")
    dr("INSERT INTO {db}.accounts (id, name, balance, opened, score) VALUES (5000, 'only on DR', 0, now64(6), 0)")
    dr("ALTER TABLE {db}.accounts UPDATE note = '' WHERE id = 3 SETTINGS mutations_sync = 2")
    dr("ALTER TABLE {db}.accounts UPDATE note = 'NULL' WHERE id = 6 SETTINGS mutations_sync = 2")
    dr("ALTER TABLE {db}.accounts UPDATE balance = balance + 0.01 WHERE id = 500 SETTINGS mutations_sync = 2")
    dr(
        "ALTER TABLE {db}.accounts UPDATE opened = opened + toIntervalMicrosecond(1) WHERE id = 700 "
        "SETTINGS mutations_sync = 2"
    )
    dr("ALTER TABLE {db}.accounts UPDATE name = 'ünïcödé ☃' WHERE id = 800 SETTINGS mutations_sync = 2")
    sides.sql(
        "prod", r"ALTER TABLE {db}.accounts UPDATE name = 'it''s a \\ path' WHERE id = 801 SETTINGS mutations_sync = 2"
    )


def test_identical_tables_are_equal(sides):
    result = comparator(sides).compare()
    assert len(result.chunks) == 10
    assert all(c.equal for c in result.chunks)
    assert result.matching == 1000


def test_drift_is_found_verified_and_the_sync_file_makes_dr_equal(sides):
    drift(sides)
    c = comparator(sides)
    result = c.compare()

    assert result.keys("missing_in_target") == [(20,), (999,)]
    assert result.keys("missing_in_source") == [(5000,)]
    assert result.keys("different") == [(3,), (6,), (10,), (500,), (700,), (800,), (801,)]
    assert c.differing_columns([(3,), (500,), (700,)], result.columns) == {
        (3,): ["note"],
        (500,): ["balance"],
        (700,): ["opened"],
    }

    verified = reverify(c, result)
    sql = sync_sql(
        c, result, verified, session_id="s1", generated_at=datetime(2024, 1, 1, tzinfo=UTC), allow_deletes=True
    )
    assert "COMMIT" not in sql
    assert 'ALTER TABLE "accounts" UPDATE "name" = \'acct 10\' WHERE "id" = 10 SETTINGS mutations_sync = 2;' in sql
    connection = Connection(sides.names["dr"])
    dr = connection.cursor()
    for statement in sql.splitlines():
        if statement and not statement.startswith("--"):
            dr.execute(statement)

    assert all(ch.equal for ch in comparator(sides).compare().chunks)


def test_floats_compare_exactly_or_at_significant_digits(sides):
    sides.sql(
        "dr", "ALTER TABLE {db}.accounts UPDATE score = score * (1 + 1e-12) WHERE id = 42 SETTINGS mutations_sync = 2"
    )
    assert comparator(sides).compare().keys("different") == [(42,)]
    assert comparator(sides, float_digits=9).compare().keys("different") == []


def test_timestamps_compare_at_the_configured_precision(sides):
    sides.sql(
        "dr",
        "ALTER TABLE {db}.accounts UPDATE opened = opened + toIntervalMicrosecond(1) WHERE id = 7 "
        "SETTINGS mutations_sync = 2",
    )
    assert comparator(sides).compare().keys("different") == [(7,)]
    assert comparator(sides, timestamp_precision=3).compare().keys("different") == []


@pytest.mark.parametrize(
    ("declared", "inner"),
    [("Nullable(String)", "String"), ("LowCardinality(Nullable(String))", "String"), ("Int64", "Int64")],
)
def test_wrapped_types_are_unwrapped(declared, inner):
    assert inner_type(declared) == inner
