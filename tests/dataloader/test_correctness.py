"""Silent row loss and wrong values (issue #19): each case through ``dataloader run``, exact target rows."""

from datetime import UTC, datetime, timedelta

import pytest

from include.dataloader.target import TableName


def test_a_backfill_keeps_the_null_cursor_rows_when_a_later_chunk_rewrites_their_file(cli, source_sql):
    source_sql("CREATE TABLE payments (payment_id int PRIMARY KEY, paid_at timestamp(6))")
    source_sql(
        "INSERT INTO payments VALUES (1, NULL), (2, '2024-01-01 00:00'), (3, '2024-01-01 23:59:59.999999'),"
        " (4, '2024-01-02 12:00'), (5, '2024-01-03 08:00')"
    )
    key = cli.add(
        "payments",
        "chunked_backfill",
        incremental_column="paid_at",
        incremental_type="timestamp",
        primary_key_columns=["payment_id"],
        chunk_interval_days=1,
    )

    assert cli.run(key)["message"] == "backfill complete: 3 chunks, 5 rows"
    assert cli.rows(key) == [
        (1, None),
        (2, datetime(2024, 1, 1)),
        (3, datetime(2024, 1, 1, 23, 59, 59, 999999)),
        (4, datetime(2024, 1, 2, 12)),
        (5, datetime(2024, 1, 3, 8)),
    ]

    source_sql("INSERT INTO payments VALUES (6, '2024-01-04 09:00')")
    cli.run(key)  # now incremental
    assert [r[0] for r in cli.rows(key, "payment_id")] == [1, 2, 3, 4, 5, 6]


PAYMENTS = [(1, None), (2, datetime(2024, 1, 1)), (3, datetime(2024, 1, 1, 23, 59, 59, 999999))]
LATER = [(4, datetime(2024, 1, 3, 9)), (5, datetime(2024, 1, 3, 8))]  # 4 moved from 2024-01-02 12:00
KEEPS_NULL_CURSORS = {
    # strategy: the target after the second run; rolling never reads NULLs (its window is a range)
    "full": PAYMENTS + LATER,
    "incremental": PAYMENTS + LATER,
    "check_and_load": PAYMENTS + LATER,
    "chunked_backfill": PAYMENTS + LATER,  # its second run is incremental
    "append_only": [*PAYMENTS, (4, datetime(2024, 1, 2, 12)), LATER[1]],  # appended once, never updated
}


@pytest.mark.parametrize("strategy", KEEPS_NULL_CURSORS)
def test_every_strategy_keeps_the_null_cursor_rows_it_has_loaded(cli, source_sql, strategy):
    source_sql("CREATE TABLE payments (payment_id int PRIMARY KEY, paid_at timestamp(6))")
    source_sql("INSERT INTO payments VALUES (1, NULL), (2, '2024-01-01 00:00'), (3, '2024-01-01 23:59:59.999999')")
    source_sql("INSERT INTO payments VALUES (4, '2024-01-02 12:00')")
    key = cli.add(
        "payments",
        strategy,
        incremental_column="paid_at",
        incremental_type="timestamp",
        primary_key_columns=["payment_id"],
        chunk_interval_days=1,
    )
    cli.run(key)
    source_sql("INSERT INTO payments VALUES (5, '2024-01-03 08:00')")
    source_sql("UPDATE payments SET paid_at = '2024-01-03 09:00' WHERE payment_id = 4")

    cli.run(key)

    assert cli.rows(key) == sorted(KEEPS_NULL_CURSORS[strategy])


def test_append_only_never_appends_a_key_twice_when_it_comes_back_with_a_newer_cursor(cli, source_sql):
    source_sql("CREATE TABLE events (event_id int PRIMARY KEY, kind text, seen_at timestamp)")
    source_sql("INSERT INTO events VALUES (1, 'a', '2024-01-01 10:00'), (2, 'b', '2024-01-02 10:00')")
    key = cli.add(
        "events",
        "append_only",
        incremental_column="seen_at",
        incremental_type="timestamp",
        primary_key_columns=["event_id"],
    )
    cli.run(key)
    source_sql("UPDATE events SET kind = 'a2', seen_at = '2024-01-03 10:00' WHERE event_id = 1")
    source_sql("INSERT INTO events VALUES (3, 'c', '2024-01-03 11:00')")

    summary = cli.run(key)

    assert (summary["rows_read"], summary["inserted"]) == (3, 1)  # 1 again, 2 at the watermark, 3
    assert cli.rows(key) == [
        (1, "a", datetime(2024, 1, 1, 10)),
        (2, "b", datetime(2024, 1, 2, 10)),
        (3, "c", datetime(2024, 1, 3, 11)),
    ]


def test_append_only_without_a_key_compares_every_column_across_the_whole_target(cli, source_sql):
    source_sql("CREATE TABLE clicks (page text, clicked_at timestamp)")
    source_sql("INSERT INTO clicks VALUES ('/a', '2024-01-01 10:00'), ('/b', '2024-01-02 10:00')")
    key = cli.add("clicks", "append_only", incremental_column="clicked_at", incremental_type="timestamp")
    cli.run(key)
    # a row identical to one below the watermark, and one at the watermark: both already loaded
    source_sql("INSERT INTO clicks VALUES ('/b', '2024-01-02 10:00'), ('/c', '2024-01-02 10:00')")

    assert cli.run(key)["inserted"] == 1
    assert cli.rows(key) == [
        ("/a", datetime(2024, 1, 1, 10)),
        ("/b", datetime(2024, 1, 2, 10)),
        ("/c", datetime(2024, 1, 2, 10)),
    ]


def test_check_and_load_reads_a_row_committed_later_at_the_watermark_then_skips(cli, source_sql):
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, updated_at timestamp(6))")
    source_sql("INSERT INTO orders VALUES (1, '2024-01-01 10:00'), (2, '2024-01-02 10:00:00.5')")
    key = cli.add(
        "orders",
        "check_and_load",
        incremental_column="updated_at",
        incremental_type="timestamp",
        primary_key_columns=["order_id"],
    )
    cli.run(key)
    assert cli.run(key)["skipped"] is True
    source_sql("INSERT INTO orders VALUES (3, '2024-01-02 10:00:00.5')")  # same instant, committed later

    late = cli.run(key)
    again = cli.run(key)

    assert (late["skipped"], late["inserted"], late["message"]) == (False, 1, "1 changes past the watermark")
    assert again["skipped"] is True
    assert [r[0] for r in cli.rows(key, "order_id")] == [1, 2, 3]


@pytest.mark.parametrize("strategy", ["incremental", "append_only", "check_and_load"])
def test_a_run_that_reads_nothing_new_writes_no_delta_version(cli, source_sql, strategy):
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, updated_at timestamp)")
    source_sql("INSERT INTO orders VALUES (1, '2024-01-01 10:00'), (2, '2024-01-02 10:00')")
    key = cli.add(
        "orders",
        strategy,
        incremental_column="updated_at",
        incremental_type="timestamp",
        primary_key_columns=["order_id"],
    )
    cli.run(key)
    version = cli.version(key)

    cli.run(key)  # re-reads order 2, at the watermark
    cli.run(key)

    assert cli.version(key) == version
    assert [r[0] for r in cli.rows(key, "order_id")] == [1, 2]


def test_the_next_run_removes_a_killed_runs_staging_table(cli, source_sql):
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, updated_at timestamp)")
    source_sql("INSERT INTO orders VALUES (1, '2024-01-01 10:00')")
    key = cli.add(
        "orders",
        "incremental",
        incremental_column="updated_at",
        incremental_type="timestamp",
        primary_key_columns=["order_id"],
    )
    cli.run(key)
    target = cli.target(key)
    leftover = TableName(target.catalog, target.schema, f"{target.table}__stg_0123456789ab")
    other = TableName(target.catalog, target.schema, "orders_archive__stg_0123456789ab")  # another table's
    for name in (leftover, other):
        cli.warehouse.write(cli.warehouse.read(target), name, mode="overwrite")  # as a killed merge leaves it
    source_sql("INSERT INTO orders VALUES (2, '2024-01-02 10:00')")

    cli.run(key)

    assert not cli.warehouse.exists(leftover)
    assert cli.warehouse.exists(other)
    assert sorted(p.name for p in cli.warehouse.path(target).parent.iterdir()) == [
        "orders",
        "orders_archive__stg_0123456789ab",
    ]


def test_column_names_keep_their_unicode_letters(cli, source_sql):
    source_sql('CREATE TABLE people (person_id int PRIMARY KEY, "prénom" text, "Straße" text, "Order ID" int)')
    source_sql("INSERT INTO people VALUES (1, 'Zoé', 'Hauptstraße 1', 7)")
    key = cli.add("people", "full")

    cli.run(key)

    assert cli.warehouse.read(cli.target(key)).columns == ["person_id", "prénom", "Straße", "Order_ID"]
    assert cli.rows(key) == [(1, "Zoé", "Hauptstraße 1", 7)]


def test_rolling_on_a_timestamptz_column_reads_the_whole_utc_window_whatever_the_source_time_zone(cli, source_sql):
    start = datetime.combine(datetime.now(UTC).date() - timedelta(days=2), datetime.min.time(), UTC)
    at = {n: start + timedelta(hours=h) for n, h in ((1, -1), (2, 1), (3, 3), (4, 10), (6, 2))}
    source_sql("CREATE TABLE sessions (session_id int PRIMARY KEY, started_at timestamptz)")
    for n in (1, 2, 3, 4):
        source_sql("INSERT INTO sessions VALUES (%s, %s)", (n, at[n]))
    key = cli.add(
        "sessions",
        "rolling",
        primary_key_columns=["session_id"],
        rolling_column="started_at",
        rolling_days=2,
        rolling_delete_missing=True,
    )
    in_utc = cli.run(key)
    # the source's session time zone is New York now: its midnight is 05:00 UTC
    source_sql(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), "
        "'America/New_York'); END $$"
    )
    source_sql("INSERT INTO sessions VALUES (6, %s)", (at[6],))

    in_new_york = cli.run(key)

    assert in_utc["inserted"] == 3
    assert (in_new_york["inserted"], in_new_york["deleted"]) == (1, 0)
    expected = [(n, at[n].replace(tzinfo=None)) for n in (2, 3, 4, 6)]  # read back as UTC wall time
    assert cli.rows(key) == expected


def test_uuid_keys_load_as_their_text_and_merge(cli, source_sql):
    ascii_bytes, not_utf8 = "41424344-4546-4748-494a-4b4c4d4e4f50", "ffffffff-0000-4000-8000-c3c3c3c3c3c3"
    source_sql("CREATE TABLE devices (device_id uuid PRIMARY KEY, seen_at timestamp)")
    source_sql("INSERT INTO devices VALUES (%s, '2024-01-01 10:00'), (%s, '2024-01-02 10:00')", (ascii_bytes, not_utf8))
    key = cli.add(
        "devices",
        "incremental",
        incremental_column="seen_at",
        incremental_type="timestamp",
        primary_key_columns=["device_id"],
    )
    cli.run(key)
    source_sql("UPDATE devices SET seen_at = '2024-01-03 10:00' WHERE device_id = %s", (ascii_bytes,))

    assert cli.run(key)["updated"] == 2  # both re-read: one changed, one at the watermark
    assert cli.rows(key) == [(ascii_bytes, datetime(2024, 1, 3, 10)), (not_utf8, datetime(2024, 1, 2, 10))]


def test_a_rolling_run_that_reads_only_unchanged_rows_writes_no_delta_version(cli, source_sql):
    today = datetime.now(UTC).date()
    source_sql("CREATE TABLE visits (visit_day date, site text, visits int, PRIMARY KEY (visit_day, site))")
    source_sql("INSERT INTO visits VALUES (%s, 'eu', 1), (%s, 'us', 2)", (today, today - timedelta(days=1)))
    key = cli.add(
        "visits",
        "rolling",
        primary_key_columns=["visit_day", "site"],
        rolling_column="visit_day",
        rolling_days=3,
        rolling_delete_missing=True,
    )
    cli.run(key)
    version = cli.version(key)

    again = cli.run(key)

    assert (again["inserted"], again["deleted"], cli.version(key)) == (0, 0, version)
    assert cli.rows(key) == [(today - timedelta(days=1), "us", 2), (today, "eu", 1)]


def test_a_backfill_on_a_timestamptz_cursor_cuts_the_same_chunks_at_the_source_and_the_target(cli, source_sql):
    source_sql(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), "
        "'America/New_York'); END $$"
    )
    source_sql("CREATE TABLE logins (login_id int PRIMARY KEY, at timestamptz)")
    moments = ["2024-01-01 00:00+00", "2024-01-01 23:30+00", "2024-01-02 02:00+00", "2024-01-03 01:00+00"]
    for n, moment in enumerate(moments, 1):
        source_sql("INSERT INTO logins VALUES (%s, %s)", (n, moment))
    key = cli.add(
        "logins",
        "chunked_backfill",
        incremental_column="at",
        incremental_type="timestamp",
        primary_key_columns=["login_id"],
        chunk_interval_days=1,
    )

    summary = cli.run(key)

    assert (summary["message"], summary["watermark"]) == (
        "backfill complete: 3 chunks, 4 rows",
        "2024-01-03 01:00:00+00:00",
    )
    assert cli.rows(key) == [
        (1, datetime(2024, 1, 1)),
        (2, datetime(2024, 1, 1, 23, 30)),
        (3, datetime(2024, 1, 2, 2)),
        (4, datetime(2024, 1, 3, 1)),
    ]
