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


def deferred_load(tier, databricks: DatabricksStandIn, table: str) -> tuple[str, int]:
    """A Databricks load of a new row ``tier.<table>`` triggered, and deferred on its submitted run:
    (the DAG run's id, the Databricks run's id)."""
    create_orders(tier, table)
    tier.repository().add(control_row(table, "incremental", **ORDERS, execution_target="databricks"))
    tier.refresh_snapshot(f"tier.{table}")
    run_id = tier.trigger(f"tier.{table}")
    databricks_run_id = databricks_run(databricks, f"tier.{table}", run_id)
    tier.wait_task(f"tier.{table}", run_id, "load", "deferred")
    return run_id, databricks_run_id


def test_a_databricks_load_defers_and_succeeds(tier, databricks):
    run_id, databricks_run_id = deferred_load(tier, databricks, "db_orders")
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
    run_id, databricks_run_id = deferred_load(tier, databricks, "db_cancel")
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


def test_a_try_lost_while_its_run_works_is_retried_onto_the_same_run(tier, databricks):
    run_id, databricks_run_id = deferred_load(tier, databricks, "db_reconnect")
    polled = polls(databricks, databricks_run_id)
    wait(
        lambda: polls(databricks, databricks_run_id) > polled,
        timeout=RUN_TIMEOUT,
        what="the triggerer to poll the run",
    )

    # the trigger's polls are refused (a 4xx the hook does not retry): the trigger, so the first try, fails
    # while the Databricks run is still held PENDING; the tier's loads have no automatic retries
    # (DATALOADER_RETRIES=0), so the second try is the one an operator starts by clearing the task
    databricks.fail_gets(databricks_run_id)
    assert tier.wait_run("tier.db_reconnect", run_id) == "failed"
    assert tier.task_states("tier.db_reconnect", run_id)[("load", -1)] == "failed"
    assert databricks.runs[databricks_run_id].history == [("PENDING", None)]  # the run went on, uncancelled
    databricks.heal(databricks_run_id)

    load_path = tier.run_path("tier.db_reconnect", run_id) + f"/taskInstances/{quote('load')}"
    stored = tier.call("GET", load_path + "/state-store")["task_state_store"]
    assert [str(entry["value"]) for entry in stored] == [str(databricks_run_id)]  # what the first try kept
    tier.call(
        "POST",
        f"/dags/{quote('tier.db_reconnect', safe='')}/clearTaskInstances",
        json={"dry_run": False, "dag_run_id": run_id, "task_ids": ["load"], "only_failed": True},
    )

    wait(
        lambda: (ti := tier.call("GET", load_path))["try_number"] == 2 and ti["state"] == "deferred",
        timeout=RUN_TIMEOUT,
        what="the second try of load to defer",
    )
    # it deferred on the run of the first try (the XCom is the second try's own): no second submit
    xcom = tier.call("GET", load_path + "/xcomEntries/run_id")
    assert str(xcom["value"]) == str(databricks_run_id)
    name = f"dataloader tier.db_reconnect load {run_id}"
    assert [b["run_name"] for b in calls(databricks, "runs/submit")].count(name) == 1
    assert [r.run_id for r in list(databricks.runs.values()) if r.payload["run_name"] == name] == [databricks_run_id]
    databricks.release(databricks_run_id)

    assert tier.wait_run("tier.db_reconnect", run_id) == "success", tier.task_states("tier.db_reconnect", run_id)
    assert databricks.runs[databricks_run_id].history[-1] == ("TERMINATED", "SUCCESS")
    load = tier.call("GET", load_path)
    assert (load["state"], load["try_number"]) == ("success", 2)
    assert sorted(tier.warehouse_table("tier.db_reconnect").column("order_id").to_pylist()) == list(range(1, 13))
    row = tier.repository().get("tier.db_reconnect")
    assert (row["last_status"], row["rows_processed"]) == ("Succeeded", 12)
    assert row["databricks_run_url"] == databricks.run_page_url(databricks_run_id)
