"""ClickHouse on the local engine, end to end: a real ClickHouse engine (chdb, embedded in-process) read
through clickhouse-connect's ArrowStream (its ``chdb://`` transport, the same client code as over HTTP),
streamed through Parquet staging into Delta on Sail, with the declared types."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from include.control.model import ControlRow
from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.readers import local_reader
from include.dataloader.source import SourceTable
from include.dataloader.strategies import STRATEGIES
from include.dataloader.strategies.base import LoadContext
from include.dataloader.target import LocalWarehouse

clickhouse_connect = pytest.importorskip("clickhouse_connect")
pytest.importorskip("chdb", reason="chdb is a pinned dev dependency")

CLICKHOUSE = dialect_for("clickhouse")

TABLE = """
CREATE TABLE shop.`order lines` (
    id UInt64, qty UInt8, delta Int16, big UInt32, price Decimal(12, 2), ratio Float64,
    status Enum8('new' = 1, 'shipped' = 2), note LowCardinality(Nullable(String)), code FixedString(2),
    day Date, created DateTime, modified DateTime64(6), paid Nullable(Bool)
) ENGINE = MergeTree ORDER BY id
"""
ROWS = """
INSERT INTO shop.`order lines` VALUES
 (1, 3, -2, 4000000000, 12.34, 0.5, 'new', 'first', 'DE', '2024-01-15', '2024-01-15 10:30:00',
  '2024-01-15 10:30:00.123456', true),
 (2, 255, 7, 1, 0.01, -1.25, 'shipped', NULL, 'FR', '2024-02-29', '2024-02-29 23:59:59',
  '2024-02-29 23:59:59.999999', NULL),
 (3, 0, 0, 0, 99999.99, 0, 'new', 'third', 'US', '2024-03-01', '2024-03-01 00:00:00',
  '2024-03-01 00:00:00.000001', false)
"""


@pytest.fixture(scope="module")
def chdb_url(tmp_path_factory):
    url = f"chdb://{tmp_path_factory.mktemp('clickhouse')}"
    client = clickhouse_connect.get_client(dsn=url)
    client.command("CREATE DATABASE shop")
    client.command(TABLE)
    client.command(ROWS)
    yield url
    client.close()


def context(spark, tmp_path, url: str, strategy: str, **fields) -> LoadContext:
    row = ControlRow.from_mapping(
        {
            "control_key": "ch.order_lines",
            "db_config_key": "ch",
            "source_schema": "shop",
            "source_table_name": "order lines",
            "destination_schema": "shop",
            "destination_table_name": "order_lines",
            "load_strategy": strategy,
            "cron": "@daily",
            "primary_key_columns": ["id"],
            **fields,
        }
    )
    warehouse = LocalWarehouse(spark, tmp_path / "warehouse")
    reader = local_reader(
        spark, CLICKHOUSE, ConnectionParams(url=url), warehouse.extract_staging(), batch_rows=2, inline_bytes=0
    )
    return LoadContext(SourceTable(row, CLICKHOUSE, reader), warehouse)


def test_a_full_load_lands_the_declared_types_and_exact_rows(spark, tmp_path, chdb_url):
    ctx = context(spark, tmp_path, chdb_url, "full")
    summary = STRATEGIES["full"](ctx)
    ctx.source.reader.close()

    assert summary.inserted == 3
    df = ctx.warehouse.read(ctx.target)
    assert {f.name: f.dataType.simpleString() for f in df.schema.fields} == {
        "id": "decimal(20,0)",
        "qty": "smallint",
        "delta": "smallint",
        "big": "bigint",
        "price": "decimal(12,2)",
        "ratio": "double",
        "status": "string",
        "note": "string",
        "code": "string",
        "day": "date",
        "created": "timestamp",
        "modified": "timestamp",
        "paid": "boolean",
    }
    # the session time zone is UTC: timestamps come back as naive UTC datetimes
    assert sorted(tuple(r) for r in df.collect()) == [
        (
            Decimal(1), 3, -2, 4_000_000_000, Decimal("12.34"), 0.5, "new", "first", "DE", date(2024, 1, 15),
            datetime(2024, 1, 15, 10, 30), datetime(2024, 1, 15, 10, 30, 0, 123456), True,
        ),
        (
            Decimal(2), 255, 7, 1, Decimal("0.01"), -1.25, "shipped", None, "FR", date(2024, 2, 29),
            datetime(2024, 2, 29, 23, 59, 59), datetime(2024, 2, 29, 23, 59, 59, 999999), None,
        ),
        (
            Decimal(3), 0, 0, 0, Decimal("99999.99"), 0.0, "new", "third", "US", date(2024, 3, 1),
            datetime(2024, 3, 1), datetime(2024, 3, 1, 0, 0, 0, 1), False,
        ),
    ]  # fmt: skip
    assert list((ctx.warehouse.root / "_extract").iterdir()) == []


def test_an_incremental_load_reads_from_the_watermark(spark, tmp_path, chdb_url):
    fields = {"incremental_column": "modified", "incremental_type": "timestamp"}
    ctx = context(spark, tmp_path, chdb_url, "incremental", **fields)
    first = STRATEGIES["incremental"](ctx)
    ctx.source.reader.close()
    assert (first.inserted, first.watermark) == (3, "2024-03-01 00:00:00.000001+00:00")

    ctx = context(spark, tmp_path, chdb_url, "incremental", **fields)
    again = STRATEGIES["incremental"](ctx, "2024-02-29 23:59:59.999999+00:00")
    ctx.source.reader.close()
    assert (again.rows_read, again.inserted, again.updated) == (2, 0, 2)


def test_an_empty_result_keeps_its_schema(spark, tmp_path, chdb_url):
    ctx = context(spark, tmp_path, chdb_url, "full")
    batches = list(CLICKHOUSE.arrow_batches(ConnectionParams(url=chdb_url), ctx.source.queries.schema_probe()))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema.field("status").type == "string"  # an Enum's names, even with no rows
    ctx.source.reader.close()


def test_enum_names_come_from_the_declared_type():
    from include.dataloader.dialects.clickhouse import enum_labels

    assert enum_labels("Nullable(Enum8('a' = 1, 'it\\'s' = -2))") == {1: "a", -2: "it's"}
    assert enum_labels("LowCardinality(String)") is None


def test_created_is_the_instant_the_server_stored(chdb_url):
    # DateTime travels as seconds since the epoch (UInt32); Spark's CAST to timestamp reads them as such
    batch = next(CLICKHOUSE.arrow_batches(ConnectionParams(url=chdb_url), "SELECT created FROM shop.`order lines`"))
    assert batch.column(0).type == "uint32"
    assert datetime.fromtimestamp(batch.column(0)[0].as_py(), UTC).replace(tzinfo=None) == datetime(2024, 1, 15, 10, 30)
