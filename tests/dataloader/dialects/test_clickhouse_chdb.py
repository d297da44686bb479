"""The ClickHouse dialect's queries run for real, on chdb (ClickHouse embedded in-process)."""

import pytest

from include.dataloader.dialects import ColumnInfo, dialect_for
from include.dataloader.queries import Cursor, SourceQueries

chdb_session = pytest.importorskip("chdb.session", reason="chdb is a pinned dev dependency")

DIALECT = dialect_for("clickhouse")
MODIFIED = Cursor("Modified Date", "timestamp")
ORDER_ID = Cursor("order_id", "integer")


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    session.query("CREATE DATABASE sales")
    session.query(
        "CREATE TABLE sales.`order lines` (order_id Int64, `Modified Date` Nullable(DateTime64(6)), "
        "amount Nullable(Decimal(12, 2)), note LowCardinality(Nullable(String))) ENGINE = MergeTree ORDER BY order_id"
    )
    session.query(
        "INSERT INTO sales.`order lines` VALUES "
        "(1, '2024-01-15 10:30:00.123455', 1.5, 'a'), (2, '2024-01-15 10:30:00.123456', 2, NULL), "
        "(3, '2024-01-15 10:30:00.123457', NULL, 'c'), (4, NULL, 4, 'd'), (5, '2024-02-01 00:00:00', 5, 'e')"
    )
    yield session
    session.close()


def rows(session, sql):
    out = session.query(sql, "TabSeparated").bytes().decode().strip()
    return [line.split("\t") for line in out.splitlines()] if out else []


@pytest.fixture
def queries():
    return SourceQueries(DIALECT, "sales", "order lines", ["order_id", "Modified Date"])


def test_the_watermark_filter_keeps_the_row_at_the_watermark_to_the_microsecond(clickhouse, queries):
    found = rows(clickhouse, queries.since(MODIFIED, "2024-01-15 10:30:00.123456"))
    assert [r[0] for r in found] == ["2", "3", "5"]


def test_change_count_is_strictly_after_the_watermark(clickhouse, queries):
    assert rows(clickhouse, queries.change_count(MODIFIED, "2024-01-15 10:30:00.123456")) == [["2"]]


def test_chunks_cover_every_row_once_null_cursors_included(clickhouse, queries):
    chunks = [
        (None, "2024-01-15 10:30:00.123456"),
        ("2024-01-15 10:30:00.123456", "2024-02-01 00:00:00"),
        ("2024-02-01 00:00:00", None),
    ]
    seen = [r[0] for lower, upper in chunks for r in rows(clickhouse, queries.chunk(MODIFIED, lower, upper))]
    assert sorted(seen) == ["1", "2", "3", "4", "5"]


def test_bounds_and_integer_chunks(clickhouse, queries):
    assert rows(clickhouse, queries.bounds(ORDER_ID)) == [["1", "5"]]
    assert [r[0] for r in rows(clickhouse, queries.chunk(ORDER_ID, 2, 4))] == ["2", "3"]


def test_catalog_types_map_to_spark(clickhouse):
    found = rows(clickhouse, DIALECT.columns_query("sales", "order lines"))
    declared = {name: kind for name, kind, _, _ in found}
    spark = {name: DIALECT.spark_type(ColumnInfo(name, kind)) for name, kind in declared.items()}
    assert spark == {"order_id": "bigint", "Modified Date": "timestamp", "amount": "decimal(12,2)", "note": "string"}
