"""Which interval a run reloads, and the lifecycle guard of the load operators."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk.api.datamodels._generated import DagRunState
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from dataplatform.exceptions import RunRefused
from dataplatform.operators.load import LoadTableOperator, QueueLoadOperator
from tests.control.helpers import add

START, END = datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)


def context(run_type="scheduled", **params):
    return {
        "run_id": "r1",
        "params": params,
        "dag_run": SimpleNamespace(run_type=run_type),
        "data_interval_start": START,
        "data_interval_end": END,
    }


ROW = {"incremental_value": "2024-01-10 00:00:00"}


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (context(), {"watermark": "2024-01-10 00:00:00", "interval": None}),
        (
            context("backfill"),
            {
                "watermark": "2024-01-10 00:00:00",
                "interval": ("2024-01-02 00:00:00+00:00", "2024-01-03 00:00:00+00:00"),
            },
        ),
        (
            context("manual", reload_interval=True),
            {
                "watermark": "2024-01-10 00:00:00",
                "interval": ("2024-01-02 00:00:00+00:00", "2024-01-03 00:00:00+00:00"),
            },
        ),
        (context("manual", force_full_reload=True), {"watermark": None, "interval": None}),
        (context("manual", watermark_override="2024-01-01"), {"watermark": "2024-01-01", "interval": None}),
    ],
)
def test_what_a_run_reads(ctx, expected):
    assert LoadTableOperator(task_id="load", control_key="k").request(ctx, ROW) == expected


def test_an_interval_reload_of_an_integer_cursor_table_is_refused_naming_the_fix():
    row = {**ROW, "incremental_type": "integer", "incremental_column": "event_id", "load_strategy": "incremental"}

    with pytest.raises(RunRefused, match=r"integer cursor 'event_id'.*force_full_reload=true"):
        LoadTableOperator(task_id="load", control_key="k").request(context("backfill"), row)
    assert LoadTableOperator(task_id="load", control_key="k").request(context(), row)["interval"] is None


def airflow_context(run_id="r1", holder_state=DagRunState.RUNNING):
    ti = SimpleNamespace(get_dagrun_state=lambda dag_id, run_id: holder_state)
    return {**context(), "run_id": run_id, "dag": SimpleNamespace(dag_id="sales.orders"), "ti": ti}


def test_a_task_whose_row_another_live_run_holds_waits_deferred_then_fails_after_the_limit(repo, control_connection):
    add(repo, "sales.orders")
    repo.queue("sales.orders", "other-run")
    operator = LoadTableOperator(task_id="load", control_key="sales.orders", claim_poll_seconds=5)

    with pytest.raises(TaskDeferred) as deferred:
        operator.begin(airflow_context())
    assert deferred.value.method_name == "claim_after_wait"
    assert isinstance(deferred.value.trigger, TimeDeltaTrigger)
    since = deferred.value.kwargs["waiting_since"]

    operator._waiting_since = (datetime.fromisoformat(since) - timedelta(hours=7)).isoformat()
    with pytest.raises(
        AirflowFailException, match=r"it is Queued for run other-run, which has not ended.*limit is 360"
    ):
        operator.begin(airflow_context())
    assert repo.get("sales.orders")["current_run_id"] == "other-run"  # nothing taken


def test_a_row_held_by_an_ended_run_is_taken_over(repo, control_connection):
    add(repo, "sales.orders")
    repo.queue("sales.orders", "other-run")

    row, _ = LoadTableOperator(task_id="load", control_key="sales.orders").begin(
        airflow_context(holder_state=DagRunState.FAILED)
    )

    assert (row["last_status"], row["current_run_id"]) == ("In Progress", "r1")


def test_queue_skips_an_inactive_row_saying_why(repo, control_connection):
    add(repo, "sales.orders", is_active=False)

    with pytest.raises(AirflowSkipException, match=r"sales.orders is inactive .* does not load it"):
        QueueLoadOperator(task_id="queue", control_key="sales.orders").execute(airflow_context())
