"""Alerts on the real stack: a deadline fired by the triggerer, a failed task, both at a local webhook."""

from urllib.parse import quote

import httpx
import pytest

from tests.airflow.conftest import ORDERS, control_row, create_orders


@pytest.fixture(scope="module")
def tables(tier):
    create_orders(tier, "late")
    repo = tier.repository()
    # the watermark is the source's newest row: the change sensor has nothing to load and defers
    late = {"incremental_value": "2024-01-04 00:00:00", "sla_minutes": 1, "alert_target": f"{tier.alerts.base}/late"}
    repo.add(control_row("late", "check_and_load", **ORDERS, **late))
    repo.add(control_row("broken", "full", alert_target=f"{tier.alerts.base}/broken"))  # no such source table
    tier.refresh_snapshot("tier.late", "tier.broken")
    # both start now: the failing load runs while the other waits for its deadline
    late = tier.trigger("tier.late")
    tier.cli("dags", "trigger", "tier.broken", "--run-id", "cli_broken_1")
    return tier, late


def test_check_and_load_waits_deferred_pages_at_its_deadline_with_working_links_then_loads_new_rows(tables):
    tier, run_id = tables

    tier.wait_task("tier.late", run_id, "wait_for_changes", "deferred")
    sensor = tier.call("GET", tier.run_path("tier.late", run_id) + "/taskInstances/wait_for_changes")
    assert sensor["trigger"]["classpath"] == "dataplatform.triggers.source_changes.SourceChangesTrigger"

    run_url = tier.stack.url + "/dags/tier.late/runs/" + quote(run_id, safe="")
    alert = tier.wait_alert("/late", lambda a: a["links"].get("Airflow run") == run_url)
    assert (alert["title"], alert["severity"]) == (
        "tier.late: load not finished 1 minutes after it was queued",
        "warning",
    )
    assert alert["links"] == {"DAG": f"{tier.stack.url}/dags/tier.late", "Airflow run": run_url}
    for url in alert["links"].values():  # the UI serves both pages
        assert httpx.get(url, timeout=30).status_code == 200
    assert tier.run_state("tier.late", run_id) == "running"  # the deadline pages; it does not stop the run

    tier.source("INSERT INTO late VALUES (13, 'new', '2024-01-05 00:00'), (14, 'new', '2024-01-05 06:00')")

    assert tier.wait_run("tier.late", run_id) == "success", tier.task_states("tier.late", run_id)
    assert {13, 14} <= set(tier.warehouse_table("tier.late").column("order_id").to_pylist())
    row = tier.repository().get("tier.late")
    assert (row["last_status"], row["incremental_value"]) == ("Succeeded", "2024-01-05 06:00:00")


def test_a_failed_load_triggered_from_the_cli_pages_the_webhook(tables):
    tier, _ = tables

    assert tier.wait_run("tier.broken", "cli_broken_1") == "failed"
    assert tier.task_states("tier.broken", "cli_broken_1") == {("queue", -1): "success", ("load", -1): "failed"}
    alert = tier.wait_alert("/broken", lambda a: "cli_broken_1" in a["links"].get("Airflow run", ""))
    assert alert["title"] == "tier.broken: task load failed (try 1)"
    assert "public.broken not found" in alert["detail"]
    assert alert["links"] == {"Airflow run": f"{tier.stack.url}/dags/tier.broken/runs/cli_broken_1"}
    assert tier.repository().get("tier.broken")["last_status"] == "Failed"
    [history] = tier.history("tier.broken", "cli_broken_1")
    assert history["load_status"] == "Failed"
