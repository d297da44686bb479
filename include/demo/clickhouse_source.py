"""The demo's ClickHouse source: a real ClickHouse engine embedded in-process (chdb), reached through
clickhouse-connect's ``chdb://`` transport, the same client the loader uses against a ClickHouse server."""

from __future__ import annotations

import shutil
from pathlib import Path

SCHEMA = [
    "CREATE DATABASE shop",
    """CREATE TABLE shop.order_lines (
           line_id UInt64, order_id UInt32, sku LowCardinality(String), status Enum8('new' = 1, 'shipped' = 2),
           quantity UInt16, price Decimal(10, 2), modified DateTime64(6)
       ) ENGINE = MergeTree ORDER BY line_id""",
    """INSERT INTO shop.order_lines SELECT number + 1, intDiv(number, 3) + 1, concat('SKU-', toString(number % 40)),
              'new', 1 + number % 5, round(2.5 + number % 97, 2),
              toDateTime64('2024-01-01 00:00:00', 6) + toIntervalSecond(number * 61)
       FROM numbers(3000)""",
]

CHANGES = [
    # shipped lines move past the watermark; new lines arrive
    """ALTER TABLE shop.order_lines UPDATE status = 'shipped', modified = toDateTime64('2024-03-01 12:00:00', 6)
       WHERE line_id % 50 = 0 SETTINGS mutations_sync = 1""",
    """INSERT INTO shop.order_lines SELECT 3000 + number + 1, 2000 + number, 'SKU-NEW', 'new', 2, 19.99,
              toDateTime64('2024-03-02 08:00:00', 6) FROM numbers(25)""",
]


def url(folder: Path) -> str:
    return f"chdb://{folder.resolve()}"


def _run(folder: Path, statements: list[str]) -> None:
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=url(folder))
    try:
        for statement in statements:
            client.command(statement)
    finally:
        client.close()  # one chdb engine per process: the loads open their own client on the same folder


def create(folder: Path) -> str:
    shutil.rmtree(folder, ignore_errors=True)
    _run(folder, SCHEMA)
    return url(folder)


def change(folder: Path) -> None:
    _run(folder, CHANGES)
