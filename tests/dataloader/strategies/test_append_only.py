"""append_only: appended once, never updated."""

from datetime import datetime

from tests.dataloader.conftest import control_row


def test_integer_cursor_appends_new_rows_once(loads, source_sql):
    source_sql("CREATE TABLE events (event_id bigint PRIMARY KEY, payload text)")
    source_sql("INSERT INTO events VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    row = control_row("events", "append_only", incremental_column="event_id", incremental_type="integer")

    first = loads.run(row)
    assert (first.inserted, first.watermark) == (3, "3")

    again = loads.run(row, first.watermark)
    assert (again.rows_read, again.inserted) == (1, 0)  # event 3 re-read, not appended twice

    source_sql("INSERT INTO events VALUES (4, 'd'), (5, 'e')")
    source_sql("UPDATE events SET payload = 'changed' WHERE event_id = 1")  # append_only ignores updates
    third = loads.run(row, again.watermark)

    assert (third.inserted, third.watermark) == (2, "5")
    assert loads.rows(row) == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]


def test_timestamp_cursor_without_key_appends_late_rows_at_the_watermark_once(loads, source_sql):
    moment = datetime(2024, 1, 15, 10, 30, 0, 250000)
    source_sql("CREATE TABLE clicks (page text, clicked_at timestamp(6))")
    source_sql("INSERT INTO clicks VALUES ('/a', %s), ('/b', '2024-01-15 09:00')", (moment,))
    row = control_row("clicks", "append_only", incremental_column="clicked_at", incremental_type="timestamp")
    watermark = loads.run(row).watermark

    source_sql("INSERT INTO clicks VALUES ('/c', %s)", (moment,))  # same instant, committed later
    summary = loads.run(row, watermark)
    assert summary.inserted == 1
    assert loads.run(row, summary.watermark).inserted == 0

    assert loads.rows(row, "page") == [("/a",), ("/b",), ("/c",)]
