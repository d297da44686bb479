"""What a verification compares per strategy, and the exact predicates sent to each side (no database)."""

from datetime import UTC, datetime

import pytest

from include.control.model import ControlRow, InvalidControlRow
from include.dataloader.dialects import dialect_for
from include.dataloader.queries import Cursor
from include.dataloader.verification import (
    Terms,
    VerificationRefused,
    bronze_predicate,
    judge,
    scope_for,
    source_predicate,
    terms_for,
)
from tests.dataloader.conftest import control_row

NOW = datetime(2024, 3, 10, 5, 0, tzinfo=UTC)
TS = Cursor("updated_at", "timestamp", with_time_zone=True)
WATERMARK = "2024-01-02 03:04:05.123456+00:00"


def incremental(**fields):
    return control_row(
        "orders",
        "incremental",
        incremental_column="updated_at",
        incremental_type="timestamp",
        primary_key_columns=["order_id"],
        verify=True,
        **fields,
    )


@pytest.mark.parametrize(
    ("db_type", "expected"),
    [
        ("postgresql", "\"updated_at\" <= CAST('2024-01-02 03:04:05.123456+00:00' AS TIMESTAMPTZ)"),
        (
            "oracle",
            "\"updated_at\" <= TO_TIMESTAMP_TZ('2024-01-02 03:04:05.123456+00:00', 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM')",
        ),
        ("sqlserver", "[updated_at] <= CAST('2024-01-02T03:04:05.123456+00:00' AS DATETIMEOFFSET(7))"),
        ("snowflake", "\"updated_at\" <= CAST('2024-01-02 03:04:05.123456+00:00' AS TIMESTAMPTZ(9))"),
        ("clickhouse", "\"updated_at\" <= toDateTime64('2024-01-02 03:04:05.123456', 6, 'UTC')"),
    ],
)
def test_incremental_compares_up_to_the_watermark_in_each_source_dialect(db_type, expected):
    scope = scope_for(incremental(), TS, WATERMARK, now=NOW)
    assert source_predicate(scope, dialect_for(db_type)) == expected


def test_the_bronze_side_is_spark_sql_locally_and_databricks_sql_on_databricks():
    scope = scope_for(incremental(), TS, WATERMARK, now=NOW)
    assert bronze_predicate(scope, "spark") == "`updated_at` <= CAST('2024-01-02 03:04:05.123456+00:00' AS TIMESTAMP)"
    assert bronze_predicate(scope, "databricks") == (
        "`updated_at` <= CAST('2024-01-02 03:04:05.123456+00:00' AS TIMESTAMP)"
    )


def test_null_cursors_are_left_out_after_incremental_loads_and_kept_after_a_backfill():
    ids = Cursor("order_id", "integer")
    after_load = scope_for(incremental(), ids, "100", now=NOW)
    after_backfill = scope_for(incremental(), ids, "100", strategy="chunked_backfill", now=NOW)
    assert bronze_predicate(after_load) == "`order_id` <= 100"
    assert source_predicate(after_backfill, dialect_for("postgresql")) == '("order_id" <= 100) OR "order_id" IS NULL'
    assert "left out" in after_load.describe() and "included" in after_backfill.describe()


def test_rolling_compares_inside_the_window_of_the_verifications_clock():
    row = control_row(
        "events", "rolling", rolling_column="day", rolling_days=7, primary_key_columns=["id"], verify=True
    )
    scope = scope_for(row, Cursor("day", "date"), None, now=NOW)  # 2024-03-10 minus 7 days
    assert source_predicate(scope, dialect_for("oracle")) == "\"day\" >= TO_DATE('2024-03-03', 'YYYY-MM-DD')"
    assert bronze_predicate(scope) == "`day` >= CAST('2024-03-03' AS DATE)"


def test_full_and_a_first_incremental_load_compare_the_whole_table():
    full = scope_for(control_row("t", "full", primary_key_columns=["id"]), None, None, now=NOW)
    never = scope_for(incremental(), TS, None, now=NOW)
    for scope in (full, never):
        assert (source_predicate(scope, dialect_for("postgresql")), bronze_predicate(scope)) == (None, None)


def test_terms_decide_what_a_difference_means():
    assert terms_for("full", incremental()) == Terms("failure", "failure")
    assert terms_for("incremental", incremental()) == Terms("drift", "failure")
    assert terms_for("append_only", incremental()) == Terms("allowed", "drift")
    rolling = control_row("e", "rolling", rolling_column="d", rolling_days=1, primary_key_columns=["id"])
    assert terms_for("rolling", rolling).missing_in_source == "drift"
    deleting = ControlRow.from_mapping({**rolling.as_columns(), "rolling_delete_missing": True})
    assert terms_for("rolling", deleting).missing_in_source == "failure"


def test_judge_counts_deleted_rows_apart_from_failures():
    compared = {
        "missing_in_target": 2,
        "missing_in_source": 3,
        "different": 1,
        "keys": {"missing_in_target": [[1], [2]], "missing_in_source": [[7], [8], [9]], "different": [[4]]},
    }
    failures, drift, keys = judge(Terms("drift", "failure"), compared)
    assert failures == 3
    assert drift == {"deleted_or_changed_at_source": 3}
    assert keys["missing_in_target"] == [[1], [2]] and keys["different"] == [[4]]
    failures, drift, _ = judge(Terms("allowed", "drift"), compared)  # append_only
    assert (failures, drift) == (2, {"changed_at_source_since_appended": 1, "in_bronze_only_allowed": 3})


def test_verify_needs_a_primary_key_and_says_so():
    with pytest.raises(InvalidControlRow, match=r"verify: needs primary_key_columns.*set verify to false"):
        control_row("t", "full", verify=True)
    with pytest.raises(InvalidControlRow, match="verify: 'yes' is not true or false"):
        control_row("t", "full", primary_key_columns=["id"], verify="yes")


def test_a_strategy_without_terms_is_refused():
    with pytest.raises(VerificationRefused, match="load_strategy 'merge' has no verification terms"):
        scope_for(incremental(), TS, None, strategy="merge", now=NOW)
