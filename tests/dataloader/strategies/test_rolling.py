"""rolling: the last N days merged; older rows deleted; optionally source deletes inside the window."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from include.control.model import ControlRow
from tests.dataloader.conftest import FIXED_NOW, control_row


@pytest.fixture
def metrics(source_sql):
    source_sql(
        "CREATE TABLE daily_metrics (metric_date date, site text, visits numeric(10,0), "
        "PRIMARY KEY (metric_date, site))"
    )
    source_sql(
        "INSERT INTO daily_metrics SELECT d::date, s, 10 "
        "FROM generate_series('2024-01-04'::date, '2024-01-10', '1 day') d, (VALUES ('eu'), ('us')) v(s)"
    )
    return control_row(
        "daily_metrics",
        "rolling",
        primary_key_columns=["metric_date", "site"],
        rolling_column="metric_date",
        rolling_days=3,
    )


def dates(loads, row):
    return sorted({r[0].isoformat() for r in loads.rows(row, "metric_date")})


def test_loads_only_the_window(loads, metrics):
    summary = loads.run(metrics)  # now = 2024-01-10: window from 2024-01-07

    assert dates(loads, metrics) == ["2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10"]
    assert (summary.inserted, summary.deleted, summary.message) == (8, 0, "window from 2024-01-07")


def test_the_window_moves_forward_and_expired_rows_are_deleted(loads, metrics, source_sql):
    loads.run(metrics)
    source_sql("UPDATE daily_metrics SET visits = 99 WHERE metric_date = '2024-01-09' AND site = 'eu'")
    source_sql("INSERT INTO daily_metrics VALUES ('2024-01-11', 'eu', 5)")

    summary = loads.run(metrics, now=datetime(2024, 1, 11, 6, 0, tzinfo=UTC))

    assert dates(loads, metrics) == ["2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11"]
    assert (summary.inserted, summary.updated, summary.deleted) == (1, 6, 2)  # 2 rows of 01-07 expired
    assert (datetime(2024, 1, 9).date(), "eu", Decimal("99")) in loads.rows(metrics)


def test_source_deletes_inside_the_window_only_when_asked(loads, metrics, source_sql):
    loads.run(metrics)
    source_sql("DELETE FROM daily_metrics WHERE metric_date = '2024-01-08' AND site = 'us'")

    loads.run(metrics)
    assert len(loads.rows(metrics)) == 8  # kept: rolling_delete_missing is off

    deleting = ControlRow.from_mapping({**metrics.as_columns(), "rolling_delete_missing": True})
    summary = loads.run(deleting)
    assert summary.deleted == 1
    assert len(loads.rows(metrics)) == 7
    assert loads.run(deleting).deleted == 0  # idempotent


def test_a_rerun_changes_nothing(loads, metrics):
    loads.run(metrics)
    before = loads.rows(metrics)
    summary = loads.run(metrics, now=FIXED_NOW)
    assert loads.rows(metrics) == before
    assert (summary.inserted, summary.deleted) == (0, 0)


@pytest.mark.parametrize("kind", ["timestamp", "timestamptz"])
def test_source_deletes_inside_a_timestamp_window_with_a_changed_row_and_a_non_ascii_column(loads, source_sql, kind):
    # the local merge (delta-rs) gets the window as its own SQL: TIMESTAMP_NTZ and TIMESTAMP literals
    source_sql(f'CREATE TABLE visits (visit_id int PRIMARY KEY, "prénom" text, seen_at {kind})')
    source_sql(
        "INSERT INTO visits VALUES (1, 'Zoë', '2024-01-09 10:00'), (2, 'Åsa', '2024-01-08 00:00'), "
        "(3, 'Jo', '2024-01-07 00:00'), (4, 'Old', '2023-12-01 00:00')"
    )
    row = control_row(
        "visits",
        "rolling",
        primary_key_columns=["visit_id"],
        rolling_column="seen_at",
        rolling_days=3,
        rolling_delete_missing=True,
    )
    assert (loads.run(row).inserted, loads.rows(row, "visit_id")) == (3, [(1,), (2,), (3,)])
    source_sql("DELETE FROM visits WHERE visit_id = 2")
    source_sql("UPDATE visits SET \"prénom\" = 'Zoé' WHERE visit_id = 1")
    source_sql("INSERT INTO visits VALUES (5, NULL, '2024-01-10 11:00')")

    summary = loads.run(row)

    assert (summary.inserted, summary.updated, summary.deleted) == (1, 2, 1)
    assert loads.rows(row, "visit_id", "prénom") == [(1, "Zoé"), (3, "Jo"), (5, None)]
