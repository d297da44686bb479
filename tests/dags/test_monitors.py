"""The monitors end to end: the real control database with rows shifted in time, Airflow's own REST API
app (in-process, on the same metadata database as dag.test()), the Databricks stand-in for the cancel,
a local git repository for the staging models, and a local webhook for the page."""

from datetime import timedelta

import psycopg
import pytest

from include.dataloader.monitors.analysis import RuleAnalyzer
from include.dataloader.monitors.failed import analyze_failed
from include.dataloader.monitors.reconcile import reconcile
from include.dataloader.monitors.staging import process_landed
from include.dataloader.monitors.stuck import cancel_long_queued, cancel_long_running
from tests.dags.conftest import ORDERS
from tests.dataloader.conftest import control_row

KEY = "test.orders"


@pytest.fixture
def airflow_api(airflow_db, monkeypatch):
    """AirflowApiHook on the real Airflow API app (no network, no auth: all users are admins here)."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from dataplatform.hooks.airflow_api import AirflowApiHook

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    return AirflowApiHook(client=TestClient(create_app()))


@pytest.fixture
def loaded(loader_dag, repo, orders):
    """test.orders loaded once through its DAG (so the DAG exists in Airflow), then a fresh Airflow run."""
    repo.add(control_row("orders", "incremental", **ORDERS))
    assert loader_dag(KEY).test().state == "success"
    return KEY


def shift(control_url, column, minutes, key=KEY):
    with psycopg.connect(control_url) as conn:
        conn.execute(
            f"UPDATE table_control SET {column} = now() - make_interval(mins => %s) WHERE control_key = %s",
            (minutes, key),
        )


def test_long_queued_rows_are_cancelled_and_their_runs_failed(loaded, repo, airflow_api, control_url):
    run_id = airflow_api.trigger(KEY)
    assert airflow_api.run_state(KEY, run_id) == "queued"
    repo.queue(KEY, run_id)
    shift(control_url, "last_status_date_time", 61)

    [result] = cancel_long_queued(repo, airflow_api, threshold=timedelta(minutes=60))

    assert result == {"control_key": KEY, "run_id": run_id, "airflow_run_failed": True}
    row = repo.get(KEY)
    assert (row["last_status"], row["last_status_message"]) == ("Failed", "Cancelled - stuck in queue")
    assert repo.runs(KEY)[-1]["load_status"] == "Cancelled"
    assert airflow_api.run_state(KEY, run_id) == "failed"
    assert cancel_long_queued(repo, airflow_api, threshold=timedelta(minutes=60)) == []  # nothing twice


def test_long_running_rows_stop_their_airflow_and_databricks_runs(
    loaded, repo, airflow_api, control_url, tmp_path, monkeypatch
):
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    from include.local.databricks import DatabricksStandIn
    from tests.dags.test_databricks_path import databricks_connection, one_task

    with DatabricksStandIn(workspace={"/Workspace/slow/": tmp_path}) as standin:
        monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", databricks_connection(standin))
        (tmp_path / "slow.py").write_text("import time\ntime.sleep(120)\n")
        databricks = DatabricksHook("databricks_default")
        dbx_run = databricks.submit_run(one_task("/Workspace/slow/slow.py", name="slow"))
        run_id = airflow_api.trigger(KEY)
        repo.queue(KEY, run_id)
        repo.start(KEY, run_id)
        repo.set_databricks_run_url(KEY, run_id, databricks.get_run_page_url(dbx_run))
        repo.update(KEY, {"max_running_minutes": 5})  # the row's own limit wins over the default
        shift(control_url, "last_load_date_time", 6)

        [result] = cancel_long_running(repo, airflow_api, databricks, threshold=timedelta(minutes=180))
        standin.runs[dbx_run].done.wait(10)

        assert result == {"control_key": KEY, "run_id": run_id, "airflow_run_failed": True, "databricks_run": dbx_run}
        assert databricks.get_run_state(dbx_run).result_state == "CANCELED"
    row = repo.get(KEY)
    assert (row["last_status"], row["last_status_message"]) == ("Failed", "Cancelled - exceeded timeout")
    assert repo.runs(KEY)[-1]["load_status"] == "Cancelled"
    assert airflow_api.run_state(KEY, run_id) == "failed"


def test_failed_rows_are_retried_or_sent_to_review(loaded, repo, airflow_api, webhook):
    repo.add(control_row("events", "full", alert_target=webhook.url))
    for key, error in [
        (KEY, "ORA-12170: TNS:Connect timeout occurred"),
        ("test.events", "ORA-00942: table or view does not exist"),
    ]:
        repo.queue(key, f"run-{key}")
        repo.fail(key, f"run-{key}", error)
    runs_before = len(airflow_api.client.get(f"/api/v2/dags/{KEY}/dagRuns").json()["dag_runs"])

    results = {r["control_key"]: r for r in analyze_failed(repo, RuleAnalyzer(), airflow_api, _pager(), max_retries=3)}

    assert results[KEY]["decision"] == "RETRY" and results[KEY]["retry_count"] == 1
    retried = repo.get(KEY)
    assert (retried["last_status"], retried["retry_count"]) == (None, 1)
    assert retried["last_status_message"] == "[AI: Retry Recommended] ORA-12170: TNS:Connect timeout occurred"
    assert airflow_api.run_state(KEY, results[KEY]["run_id"]) == "queued"
    assert len(airflow_api.client.get(f"/api/v2/dags/{KEY}/dagRuns").json()["dag_runs"]) == runs_before + 1

    assert results["test.events"]["decision"] == "REVIEW"
    reviewed = repo.get("test.events")
    assert (reviewed["last_status"], reviewed["retry_count"]) == ("Failed", 0)
    assert reviewed["last_status_message"] == "[AI: Requires Review] ORA-00942: table or view does not exist"
    [page] = webhook.received
    assert page["title"] == "test.events: failed load needs a review"

    assert analyze_failed(repo, RuleAnalyzer(), airflow_api, _pager(), max_retries=3) == []  # nothing twice


def test_a_row_out_of_retries_is_left_alone(loaded, repo, airflow_api, control_url):
    repo.queue(KEY, "r")
    repo.fail(KEY, "r", "Connection reset by peer")
    with psycopg.connect(control_url) as conn:
        conn.execute("UPDATE table_control SET retry_count = 3")
    assert analyze_failed(repo, RuleAnalyzer(), airflow_api, _pager(), max_retries=3) == []


def _pager():
    from dataplatform.notifications.pager import AlertPager

    return AlertPager()


def test_the_reconciler_corrects_rows_whose_airflow_run_ended(loaded, repo, airflow_api):
    repo.add(control_row("events", "full"))
    repo.add(control_row("shell", "full"))
    run_id = airflow_api.trigger(KEY)
    repo.queue(KEY, run_id)
    repo.start(KEY, run_id)
    airflow_api.fail_run(KEY, run_id)  # the worker died; Airflow says failed, the row still says In Progress
    live = airflow_api.trigger("test.orders")
    repo.queue("test.events", "gone-run")  # no such Airflow run
    repo.queue("test.shell", "cli__2024-01-01T00:00:00")  # a `dataloader run` from a shell: not Airflow's

    corrections = reconcile(repo, airflow_api)

    assert {(c["control_key"], c["airflow_state"]) for c in corrections} == {(KEY, "failed"), ("test.events", None)}
    assert repo.get(KEY)["last_status"] == "Failed"
    assert "the row said In Progress but Airflow run" in repo.get(KEY)["last_status_message"]
    assert repo.get("test.shell")["last_status"] == "Queued"
    [change] = [h for h in repo.history(KEY) if h["new_values"].get("last_status") == "Failed"]
    assert change["change_source"] == "test"
    assert airflow_api.run_state(KEY, live) == "queued"


def test_landed_tables_get_staging_models_committed_to_git(loaded, repo, tmp_path, spark, loader_env):
    import git
    import yaml

    from include.dataloader.target import LocalWarehouse, TableName

    worktree = tmp_path / "dbt"
    checkout = git.Repo.init(worktree)
    (worktree / "README.md").write_text("dbt project\n")
    checkout.index.add(["README.md"])
    checkout.index.commit("init")
    warehouse = LocalWarehouse(spark, loader_env / "warehouse")

    def columns_of(row):
        name = TableName(row["destination_catalog"], row["destination_schema"], row["destination_table_name"])
        return [(f.name, f.dataType.simpleString()) for f in warehouse.read(name).schema.fields]

    [result] = process_landed(repo, worktree, columns_of)

    assert result["files"] == ["models/staging/test/_test__sources.yml", "models/staging/test/stg_test__orders.sql"]
    sources = yaml.safe_load((worktree / result["files"][0]).read_text())
    [table] = sources["sources"][0]["tables"]
    assert (sources["sources"][0]["database"], table["name"]) == ("bronze", "orders")
    assert table["columns"] == [
        {"name": "order_id", "data_type": "int"},
        {"name": "status", "data_type": "string"},
        {"name": "updated_at", "data_type": "timestamp_ntz"},
    ]
    model = (worktree / result["files"][1]).read_text()
    assert "select * from {{ source('test', 'orders') }}" in model and "        updated_at\n" in model
    assert checkout.head.commit.message == "staging model for test.orders (test.orders)"
    assert repo.get(KEY)["staging_model_processed"] is True
    assert process_landed(repo, worktree, columns_of) == []

    repo.update(KEY, {"cron": "@daily"})  # a row processed again updates its entry, no duplicate
    with psycopg.connect(repo.url) as conn:
        conn.execute("UPDATE table_control SET staging_model_processed = false")
    process_landed(repo, worktree, columns_of)
    assert len(yaml.safe_load((worktree / result["files"][0]).read_text())["sources"][0]["tables"]) == 1
