"""The Databricks execution target end to end, against the local stand-in for the Jobs API."""

import json
import time

import pytest

from include.dataloader.job import job_arguments
from include.local.databricks import DatabricksStandIn
from tests.dags.conftest import ORDERS, tasks
from tests.dataloader.conftest import control_row

JOB_FILE = "/Workspace/Shared/dataloader/include/dataloader/job.py"


def databricks_connection(standin: DatabricksStandIn) -> str:
    """The Airflow connection (JSON) of the stand-in."""
    return json.dumps(
        {
            "conn_type": "databricks",
            "host": "127.0.0.1",
            "port": standin.port,
            "schema": "http",
            "password": "dapi-test-token",
        }
    )


@pytest.fixture
def databricks(loader_env, source_url, monkeypatch):
    standin = DatabricksStandIn(
        env={"TEST_SOURCE_URL": source_url, "DATALOADER_WAREHOUSE": str(loader_env / "warehouse")}
    ).start()
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", databricks_connection(standin))
    monkeypatch.setenv("DATALOADER_DATABRICKS_POLL_SECONDS", "1")
    monkeypatch.setenv("DATALOADER_DATABRICKS_CLUSTER", json.dumps({"existing_cluster_id": "0101-loader"}))
    yield standin
    standin.stop()


def submits(standin):
    return [body for method, path, body in standin.requests if path.endswith("/jobs/runs/submit")]


def one_task(python_file: str, *parameters: str, name: str = "test") -> dict:
    """A runs/submit body of one spark_python_task on an existing cluster."""
    task = {"task_key": "t", "existing_cluster_id": "0101-test", "spark_python_task": {"python_file": python_file}}
    if parameters:
        task["spark_python_task"]["parameters"] = list(parameters)
    return {"run_name": name, "tasks": [task]}


def wait_for(condition, seconds: float = 20) -> None:
    """Poll until ``condition()`` holds (a state change of a run in another thread)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def test_a_load_runs_as_a_databricks_job(airflow_db, loader_dag, repo, orders, databricks):
    repo.add(control_row("orders", "incremental", **ORDERS, execution_target="databricks"))
    dbconfig = repo.get_dbconfig("test_source")
    before = repo.get("test.orders")

    run = loader_dag("test.orders").test()

    assert run.state == "success", tasks(run)
    [payload] = submits(databricks)
    assert payload == {  # the Jobs API 2.1+ form: the task and its cluster in `tasks`
        "run_name": f"dataloader test.orders load {run.run_id}",
        "tasks": [
            {
                "task_key": "dataloader",
                "existing_cluster_id": "0101-loader",
                "spark_python_task": {"python_file": JOB_FILE, "parameters": job_arguments(before, dbconfig)},
            }
        ],
    }
    assert "TEST_SOURCE_URL" in json.dumps(payload) and "postgresql://" not in json.dumps(payload)  # names only
    polls = [p for m, p, _ in databricks.requests if p.endswith("/jobs/runs/get")]
    assert len(polls) >= 2  # the trigger polled while the task was deferred

    [run_id] = databricks.runs
    task_run_id = databricks.task_run_id(run_id)
    assert task_run_id != run_id
    # the summary is read from the task run: Databricks refuses get-output for the submitted run's own id
    assert [b["run_id"] for _, p, b in databricks.requests if p.endswith("/runs/get-output")] == [str(task_run_id)]
    row = repo.get("test.orders")
    assert row["databricks_run_url"] == databricks.run_page_url(run_id)
    assert (row["last_status"], row["incremental_value"], row["rows_processed"]) == (
        "Succeeded",
        "2024-01-04 00:00:00",
        12,
    )
    load = next(ti for ti in run.get_task_instances() if ti.task_id == "load")
    summary = load.xcom_pull(task_ids="load")
    assert (summary["inserted"], summary["watermark"], summary["strategy"]) == (
        12,
        "2024-01-04 00:00:00",
        "incremental",
    )
    assert load.xcom_pull(task_ids="load", key="run_page_url") == row["databricks_run_url"]


def test_a_failed_databricks_run_fails_the_row(airflow_db, loader_dag, repo, orders, databricks, source_sql):
    repo.add(control_row("orders", "incremental", **ORDERS, execution_target="databricks"))
    dag = loader_dag("test.orders")
    source_sql("DROP TABLE orders")

    run = dag.test()

    assert run.state == "failed"
    row = repo.get("test.orders")
    assert row["last_status"] == "Failed"
    assert (
        "FAILED" in row["last_status_message"] and "source table public.orders not found" in row["last_status_message"]
    )
    assert row["databricks_run_url"].startswith(databricks.url)


def test_a_backfill_runs_its_plan_and_chunks_as_databricks_runs(airflow_db, loader_dag, repo, orders, databricks):
    settings = {**ORDERS, "incremental_column": "order_id", "incremental_type": "integer", "chunk_size": 5}
    repo.add(control_row("orders", "chunked_backfill", **settings, execution_target="databricks"))

    run = loader_dag("test.orders").test()

    assert run.state == "success", tasks(run)
    actions = [p["tasks"][0]["spark_python_task"]["parameters"] for p in submits(databricks)]
    assert [a[a.index("--action") + 1] for a in actions] == ["plan", "chunk", "chunk", "chunk", "finalize"]
    chunks = [json.loads(a[a.index("--chunk") + 1]) for a in actions if "--chunk" in a]
    assert sorted((c["index"], c["lower"], c["upper"]) for c in chunks) == [(0, None, 6), (1, 6, 11), (2, 11, None)]
    row = repo.get("test.orders")
    assert (row["last_status"], row["load_strategy"], row["incremental_value"]) == ("Succeeded", "incremental", "12")


def test_cancel_stops_the_run_and_the_operator_records_it(databricks, repo, control_connection, tmp_path):
    from airflow.providers.databricks.hooks.databricks import DatabricksHook, RunState

    from dataplatform.operators.load import DatabricksLoadOperator

    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(60)\n")
    databricks.workspace["/Workspace/slow/"] = tmp_path
    hook = DatabricksHook("databricks_default")
    run_id = hook.submit_run(one_task("/Workspace/slow/slow.py"))
    wait_for(lambda: hook.get_run_state(run_id).life_cycle_state == "RUNNING")

    hook.cancel_run(run_id)
    databricks.runs[run_id].done.wait(10)

    state = hook.get_run_state(run_id)
    assert (state.life_cycle_state, state.result_state) == ("TERMINATED", "CANCELED")

    # what the operator does with the trigger's event for that run
    from tests.control.helpers import add

    add(repo, "sales.orders")
    repo.queue("sales.orders", "run-1")
    repo.start("sales.orders", "run-1")
    operator = DatabricksLoadOperator(task_id="load", control_key="sales.orders", python_file="x", cluster={})
    event = {
        "run_id": run_id,
        "run_page_url": "u",
        "run_state": RunState(**state.__dict__).to_json(),
        "repair_run": False,
        "errors": [],
    }
    with pytest.raises(Exception, match="CANCELED"):
        operator.execute_complete({"run_id": "run-1"}, event)
    assert repo.get("sales.orders")["last_status"] == "Failed"
