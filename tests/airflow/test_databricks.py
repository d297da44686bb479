"""Databricks loads on the real stack: the load defers in the triggerer on a run of the Jobs API stand-in.

The stand-in (``include/local/databricks.py``) serves ``databricks_default`` (the tier's environment points
it at ``tier.databricks_port``) and runs each submitted job with the local engine, with the secrets a
secret scope would hold as its environment. It holds every new run PENDING (a cluster starting) until the
test releases it, so the deferred task is seen, and cancelled, while its run is still active.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from include.local.databricks import DatabricksStandIn
from tests.airflow.conftest import ORDERS, RUN_TIMEOUT, control_row, create_orders, wait


@pytest.fixture(scope="module")
def databricks(tier):
    standin = DatabricksStandIn(
        env={
            "TIER_SOURCE_URL": tier.source_url,  # the dbconfig's secret (scope env)
            "DATALOADER_WAREHOUSE": str(tier.stack.home / "dataloader" / "warehouse"),
        },
        hold=True,
        port=tier.databricks_port,
    ).start()
    try:
        yield standin
    finally:
        standin.stop()  # also kills the job processes of runs still going


def databricks_run(standin: DatabricksStandIn, dag_id: str, run_id: str) -> int:
    """The id of the Databricks run the load task of that DAG run submitted (once it has)."""

    def submitted():
        return next(
            (
                r.run_id
                for r in list(standin.runs.values())
                if r.payload["run_name"] == f"dataloader {dag_id} load {run_id}"
            ),
            None,
        )

    return wait(submitted, timeout=RUN_TIMEOUT, what=f"the Databricks run of {dag_id} {run_id}")


def calls(standin: DatabricksStandIn, endpoint: str) -> list[dict]:
    return [body for _, path, body in list(standin.requests) if path.endswith(f"/jobs/{endpoint}")]


def polls(standin: DatabricksStandIn, run_id: int) -> int:
    return sum(str(b.get("run_id")) == str(run_id) for b in calls(standin, "runs/get"))


def test_a_databricks_load_defers_and_succeeds(tier, databricks):
    create_orders(tier, "db_orders")
    tier.repository().add(control_row("db_orders", "incremental", **ORDERS, execution_target="databricks"))
    tier.refresh_snapshot("tier.db_orders")

    run_id = tier.trigger("tier.db_orders")
    databricks_run_id = databricks_run(databricks, "tier.db_orders", run_id)
    tier.wait_task("tier.db_orders", run_id, "load", "deferred")
    # stored at submit time, while the run is still pending
    assert tier.repository().get("tier.db_orders")["databricks_run_url"] == databricks.run_page_url(databricks_run_id)
    databricks.release(databricks_run_id)

    assert tier.wait_run("tier.db_orders", run_id) == "success", tier.task_states("tier.db_orders", run_id)
    assert tier.task_states("tier.db_orders", run_id) == {("queue", -1): "success", ("load", -1): "success"}
    assert databricks.runs[databricks_run_id].history[-1] == ("TERMINATED", "SUCCESS")
    target = tier.warehouse_table("tier.db_orders")
    assert sorted(target.column("order_id").to_pylist()) == list(range(1, 13))
    row = tier.repository().get("tier.db_orders")
    assert (row["last_status"], row["rows_processed"], row["incremental_value"]) == (
        "Succeeded",
        12,
        "2024-01-04 00:00:00",
    )
    assert row["databricks_run_url"] == databricks.run_page_url(databricks_run_id)
    [history] = tier.history("tier.db_orders", run_id)
    assert (history["load_status"], history["rows_processed"]) == ("Succeeded", 12)
    # the output is read from the task run: Databricks refuses runs/get-output for the submitted run's id
    task_run_id = databricks.task_run_id(databricks_run_id)
    assert task_run_id != databricks_run_id
    assert [str(b["run_id"]) for b in calls(databricks, "runs/get-output")] == [str(task_run_id)]


def test_marking_a_deferred_databricks_load_failed_cancels_its_run(tier, databricks):
    create_orders(tier, "db_cancel")
    tier.repository().add(control_row("db_cancel", "incremental", **ORDERS, execution_target="databricks"))
    tier.refresh_snapshot("tier.db_cancel")

    run_id = tier.trigger("tier.db_cancel")
    databricks_run_id = databricks_run(databricks, "tier.db_cancel", run_id)
    tier.wait_task("tier.db_cancel", run_id, "load", "deferred")
    # the operator's own calls are over once the task is deferred: a later runs/get is the trigger's poll,
    # i.e. the triggerer runs it (a task marked failed before then has no trigger running to cancel its run)
    polled = polls(databricks, databricks_run_id)
    wait(
        lambda: polls(databricks, databricks_run_id) > polled,
        timeout=RUN_TIMEOUT,
        what="the triggerer to poll the run",
    )

    # what an operator does in the UI: mark the deferred task failed
    tier.call(
        "PATCH",
        tier.run_path("tier.db_cancel", run_id) + f"/taskInstances/{quote('load')}",
        json={"new_state": "failed"},
    )

    wait(
        lambda: str(databricks_run_id) in [str(b.get("run_id")) for b in calls(databricks, "runs/cancel")],
        timeout=RUN_TIMEOUT,
        what=f"runs/cancel of the Databricks run {databricks_run_id}",
    )
    assert databricks.runs[databricks_run_id].done.wait(30)
    assert databricks.runs[databricks_run_id].history[-1] == ("TERMINATED", "CANCELED")
    assert tier.wait_run("tier.db_cancel", run_id) == "failed"
    assert tier.task_states("tier.db_cancel", run_id)[("load", -1)] == "failed"
