"""Which interval a run reloads, and the lifecycle guard of the load operators."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from dataplatform.operators.load import LoadTableOperator
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


def test_a_load_that_was_never_queued_for_this_run_fails_with_the_reason(repo, control_connection):
    add(repo, "sales.orders")
    repo.queue("sales.orders", "other-run")
    operator = LoadTableOperator(task_id="load", control_key="sales.orders")

    with pytest.raises(AirflowFailException, match=r"not queued for run r1: it is Queued for run other-run"):
        operator.begin({"run_id": "r1", "dag": SimpleNamespace(dag_id="sales.orders")})
