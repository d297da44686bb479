"""incremental: a sequence of source changes, with the exact target after each run."""

from datetime import datetime
from decimal import Decimal

import pytest

from include.control.model import ControlRow
from include.dataloader.strategies.base import SchemaChangeError
from tests.dataloader.conftest import control_row

T1 = datetime(2024, 1, 15, 10, 30, 0, 123456)
T2 = datetime(2024, 1, 15, 10, 30, 0, 500000)
T3 = datetime(2024, 1, 16, 8, 0, 0, 1)


@pytest.fixture
def orders(source_sql):
    source_sql(
        "CREATE TABLE orders (order_id int PRIMARY KEY, status text, amount numeric(12,2), updated_at timestamp(6))"
    )
    source_sql(
        "INSERT INTO orders VALUES (1, 'new', 10.50, %s), (2, 'new', 20, %s), (3, 'legacy', NULL, NULL)", (T1, T2)
    )
    return control_row(
        "orders",
        "incremental",
        incremental_column="updated_at",
        incremental_type="timestamp",
        primary_key_columns=["order_id"],
    )


def test_first_load_takes_every_row_with_declared_types(loads, orders):
    summary = loads.run(orders)

    assert (summary.rows_read, summary.inserted, summary.updated) == (3, 3, 0)
    assert summary.watermark == "2024-01-15 10:30:00.5"
    assert loads.rows(orders) == [
        (1, "new", Decimal("10.50"), T1),
        (2, "new", Decimal("20.00"), T2),
        (3, "legacy", None, None),  # a NULL cursor is loaded by the first, full read
    ]
    # not the drifted decimal(38,10) / timestamp of a driver
    assert loads.schema(orders) == {
        "order_id": "int",
        "status": "string",
        "amount": "decimal(12,2)",
        "updated_at": "timestamp_ntz",
    }


def test_a_rerun_changes_nothing(loads, orders):
    first = loads.run(orders)
    before = loads.rows(orders)

    again = loads.run(orders, first.watermark)

    assert loads.rows(orders) == before
    assert (again.inserted, again.watermark) == (0, first.watermark)
    assert again.updated == 1  # the row at exactly the watermark is read again, and merged onto itself


def test_rows_at_exactly_the_watermark_are_not_skipped(loads, orders, source_sql):
    watermark = loads.run(orders).watermark
    # committed after the load, with the very timestamp of the watermark: a `> watermark` or a
    # `> watermark + 1 second` filter would miss both
    source_sql("INSERT INTO orders VALUES (4, 'late', 4, %s), (5, 'late', 5, %s)", (T2, T2))
    source_sql("UPDATE orders SET status = 'paid', updated_at = %s WHERE order_id = 1", (T3,))

    summary = loads.run(orders, watermark)

    assert (summary.inserted, summary.updated) == (2, 2)
    assert summary.watermark == "2024-01-16 08:00:00.000001"
    assert loads.rows(orders, "order_id", "status") == [
        (1, "paid"),
        (2, "new"),
        (3, "legacy"),
        (4, "late"),
        (5, "late"),
    ]


def test_late_rows_below_the_watermark_need_the_lookback(loads, orders, source_sql):
    watermark = loads.run(orders).watermark
    source_sql("INSERT INTO orders VALUES (6, 'late by 5 minutes', 6, %s)", (datetime(2024, 1, 15, 10, 25),))

    assert loads.run(orders, watermark).inserted == 0
    with_lookback = ControlRow.from_mapping({**orders.as_columns(), "lookback_minutes": 10})
    summary = loads.run(with_lookback, watermark)

    assert summary.inserted == 1
    assert summary.watermark == watermark  # re-reading below it never moves it back
    assert (6, "late by 5 minutes") in loads.rows(orders, "order_id", "status")


def test_a_new_source_column_is_added_to_the_target(loads, orders, source_sql):
    watermark = loads.run(orders).watermark
    source_sql("ALTER TABLE orders ADD COLUMN channel varchar(20)")
    source_sql("INSERT INTO orders VALUES (7, 'new', 7, %s, 'web')", (T3,))

    summary = loads.run(orders, watermark)

    assert summary.added_columns == ["channel"]
    assert loads.schema(orders)["channel"] == "string"
    assert loads.rows(orders, "order_id", "channel") == [(1, None), (2, None), (3, None), (7, "web")]


def test_an_incompatible_type_change_stops_the_load_naming_the_column(loads, orders, source_sql):
    watermark = loads.run(orders).watermark
    source_sql("ALTER TABLE orders ALTER COLUMN amount TYPE text")
    source_sql("INSERT INTO orders VALUES (8, 'new', 'eight', %s)", (T3,))

    with pytest.raises(SchemaChangeError, match=r"column 'amount' is string at the source but decimal\(12,2\)"):
        loads.run(orders, watermark)
    assert len(loads.rows(orders)) == 3  # nothing written


def test_duplicate_keys_in_one_read_keep_the_latest_row(loads, source_sql):
    source_sql("CREATE TABLE changes (id int, v text, changed_at timestamp)")  # a change log: no unique key
    source_sql(
        "INSERT INTO changes VALUES (1, 'old', '2024-01-01'), (1, 'newest', '2024-01-03'), (1, 'mid', '2024-01-02')"
    )
    row = control_row(
        "changes",
        "incremental",
        incremental_column="changed_at",
        incremental_type="timestamp",
        primary_key_columns=["id"],
    )

    loads.run(row)

    assert loads.rows(row, "id", "v") == [(1, "newest")]
