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
            "password": "canary-dapi-test-token",
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


def assert_sdk_shapes(standin: DatabricksStandIn) -> None:
    """Every body sent and every answer given is exactly a class of the official SDK (databricks-sdk).

    Called after dag.test(): importing ``databricks.sdk`` then also shows that the plugins folder, which
    Airflow loads file by file as top-level modules, does not shadow the ``databricks`` namespace."""
    from databricks.sdk.service import jobs

    for _, path, body in standin.requests:
        if path.endswith("/runs/submit"):
            assert [jobs.SubmitTask.from_dict(t).as_dict() for t in body["tasks"]] == body["tasks"]
    answer_classes = {"runs/submit": jobs.SubmitRunResponse, "runs/get": jobs.Run, "runs/get-output": jobs.RunOutput}
    for endpoint, status, answer in standin.answers:
        if status == 200 and endpoint in answer_classes:
            assert answer_classes[endpoint].from_dict(answer).as_dict() == answer, endpoint


def stored_run_ids(run) -> dict[str, str]:
    """The Databricks run ids the tasks of a DAG run kept in Airflow's task_state_store, by task id."""
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskStateStoreModel).filter_by(run_id=run.run_id, key="databricks_run_id").all()
        return {r.task_id: r.value for r in rows}


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
    assert_sdk_shapes(databricks)
    polls = [p for m, p, _ in databricks.requests if p.endswith("/jobs/runs/get")]
    assert len(polls) >= 2  # the trigger polled while the task was deferred

    [run_id] = databricks.runs
    task_run_id = databricks.task_run_id(run_id)
    assert task_run_id != run_id
    # the summary is read from the task run: Databricks refuses get-output for the submitted run's own id
    assert [b["run_id"] for _, p, b in databricks.requests if p.endswith("/runs/get-output")] == [str(task_run_id)]
    row = repo.get("test.orders")
    assert row["databricks_run_url"] == databricks.run_page_url(run_id)
    assert stored_run_ids(run) == {"load": str(run_id)}  # what a retry reconnects to (durable)
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


# -- a deferred load's run: output, cancellation, reconnection ---------------------------------------

SLOW = "/Workspace/slow/slow.py"


class FakeTI:
    def __init__(self):
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


class TaskStateStore(dict):
    """A task's ``task_state_store``: Airflow keys it by DAG run, task and map index, so tries share it."""

    def set(self, key, value, **_):
        self[key] = value


def task_context(run_id: str, store: TaskStateStore | None = None) -> dict:
    from types import SimpleNamespace

    context = {"run_id": run_id, "dag": SimpleNamespace(dag_id="sales.orders"), "ti": FakeTI(), "params": {}}
    if store is not None:
        context["task_state_store"] = store
    return context


def load_operator(python_file: str = SLOW):
    from dataplatform.operators.load import DatabricksLoadOperator

    return DatabricksLoadOperator(
        task_id="load",
        control_key="sales.orders",
        python_file=python_file,
        cluster={"existing_cluster_id": "0101-loader"},
        polling_period_seconds=1,
    )


@pytest.fixture
def slow_job(databricks, repo, control_connection, tmp_path):
    """A queued control row whose Databricks job is a script that sleeps (it never reaches a source)."""
    from tests.control.helpers import add

    (tmp_path / "slow.py").write_text("import time\ntime.sleep(60)\n")
    (tmp_path / "chatty.py").write_text("print('Spark is starting')\nprint('{\"level\": \"INFO\"}')\n")
    databricks.workspace["/Workspace/slow/"] = tmp_path
    add(repo, "sales.orders")
    repo.queue("sales.orders", "run-1")
    return databricks


def deferred_run(operator, context) -> int:
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    return deferred.value.trigger.run_id


def event_of(run_id: int) -> dict:
    """The event DatabricksExecutionTrigger yields for a finished run."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook, RunState

    hook = DatabricksHook("databricks_default")
    run = hook.get_run(run_id)
    return {
        "run_id": run_id,
        "run_page_url": run["run_page_url"],
        "run_state": RunState(**run["state"]).to_json(),
        "repair_run": False,
        "errors": [],
    }


def test_a_retry_reconnects_to_the_run_its_earlier_try_submitted(slow_job, repo):
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    store = TaskStateStore()
    run_id = deferred_run(load_operator(), task_context("run-1", store))
    assert store == {"databricks_run_id": run_id}

    # the worker is lost before the deferral is recorded: the next try (a new operator object) runs again
    again = deferred_run(load_operator(), task_context("run-1", store))

    assert again == run_id
    assert len(submits(slow_job)) == 1
    assert repo.get("sales.orders")["databricks_run_url"] == slow_job.run_page_url(run_id)

    # a run that has ended is not reconnected to: the next try submits a fresh one
    DatabricksHook("databricks_default").cancel_run(run_id)
    slow_job.runs[run_id].done.wait(10)
    fresh = deferred_run(load_operator(), task_context("run-1", store))
    assert fresh != run_id and store == {"databricks_run_id": fresh} and len(submits(slow_job)) == 2
    DatabricksHook("databricks_default").cancel_run(fresh)


def test_without_durable_a_retry_submits_again(slow_job):
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    store = TaskStateStore()
    operator = load_operator()
    operator.durable = False
    first = deferred_run(operator, task_context("run-1", store))
    second = deferred_run(operator, task_context("run-1", store))
    assert first != second and store == {}
    for run_id in (first, second):
        DatabricksHook("databricks_default").cancel_run(run_id)


def test_a_deferred_load_marked_failed_or_cleared_cancels_its_run(slow_job, monkeypatch):
    """Airflow 3.3's triggerer, on a user action on a deferred task (mark failed, clear, mark success),
    cancels the trigger's task with its user-action message; the trigger's on_kill cancels the run.
    Both are run here as Airflow's own code (TriggerRunner.cancel_triggers / run_trigger)."""
    import asyncio
    from collections import deque
    from types import SimpleNamespace

    import structlog
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")
    run_id = deferred_run(load_operator(), task_context("run-1", TaskStateStore()))
    wait_for(lambda: slow_job.runs[run_id].life_cycle_state == "RUNNING")
    from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

    trigger = DatabricksExecutionTrigger(
        run_id=run_id, databricks_conn_id="databricks_default", polling_period_seconds=1
    )
    trigger.task_instance = None
    runner = SimpleNamespace(
        triggers={1: {"name": "load", "events": 0}},
        to_cancel=deque(),
        events=deque(),
        log=structlog.get_logger(),
        _shared_streams=None,
    )

    async def user_marks_the_task_failed():
        runner.triggers[1]["task"] = asyncio.create_task(TriggerRunner.run_trigger(runner, 1, trigger))
        await asyncio.sleep(0.5)  # the trigger is polling the run
        runner.to_cancel.append(1)
        await TriggerRunner.cancel_triggers(runner)
        with pytest.raises(asyncio.CancelledError):
            await runner.triggers[1]["task"]

    asyncio.run(user_marks_the_task_failed())

    assert ("POST", "/api/2.2/jobs/runs/cancel", {"run_id": run_id}) in slow_job.requests
    slow_job.runs[run_id].done.wait(10)
    assert slow_job.runs[run_id].history[-2:] == [("TERMINATING", None), ("TERMINATED", "CANCELED")]
    assert not runner.events  # no event: the task instance was already ended by the user


def test_a_run_without_a_summary_fails_naming_its_run_page(slow_job, repo):
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    repo.start("sales.orders", "run-1")
    hook = DatabricksHook("databricks_default")
    run_id = hook.submit_run(one_task("/Workspace/slow/chatty.py"))
    slow_job.runs[run_id].done.wait(20)

    with pytest.raises(Exception, match="printed no JSON summary") as error:
        load_operator().execute_complete(task_context("run-1"), event_of(run_id))

    assert slow_job.run_page_url(run_id) in str(error.value)
    row = repo.get("sales.orders")
    assert row["last_status"] == "Failed" and slow_job.run_page_url(run_id) in row["last_status_message"]


def test_a_run_whose_output_cannot_be_read_fails_naming_its_run_page(slow_job, repo):
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    repo.start("sales.orders", "run-1")
    run_id = DatabricksHook("databricks_default").submit_run(one_task("/Workspace/slow/chatty.py"))
    slow_job.runs[run_id].done.wait(20)
    event = event_of(run_id)
    slow_job.runs.pop(run_id)  # the run is gone (Databricks keeps runs 60 days)

    with pytest.raises(Exception, match="its output could not be read") as error:
        load_operator().execute_complete(task_context("run-1"), event)

    assert "Run " in str(error.value) and event["run_page_url"] in str(error.value)
    assert repo.get("sales.orders")["last_status"] == "Failed"


def test_a_skipped_run_fails_the_load_with_its_state_and_run_page(slow_job, repo):
    repo.start("sales.orders", "run-1")
    slow_job.hold = True
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    run_id = DatabricksHook("databricks_default").submit_run(one_task(SLOW))
    slow_job.end(run_id, "SKIPPED", None, "Skipped: a concurrent run is active")

    with pytest.raises(Exception, match="ended SKIPPED") as error:
        load_operator().execute_complete(task_context("run-1"), event_of(run_id))

    assert "Skipped: a concurrent run is active" in str(error.value)
    assert slow_job.run_page_url(run_id) in str(error.value)
    assert repo.get("sales.orders")["last_status"] == "Failed"


def test_a_run_ended_before_the_task_would_defer_completes_without_deferring(slow_job, repo, monkeypatch):
    """Deferring on a run that has ended would only open Airflow 3.3's defer-exit race; the task reads it."""
    from dataplatform.operators.load import DatabricksLoadOperator

    submit = DatabricksLoadOperator._submit_or_reconnect

    def submit_and_let_it_end(operator, context, payload):
        run_id = submit(operator, context, payload)
        slow_job.runs[run_id].done.wait(20)
        return run_id

    monkeypatch.setattr(DatabricksLoadOperator, "_submit_or_reconnect", submit_and_let_it_end)

    with pytest.raises(Exception, match="printed no JSON summary") as error:  # not TaskDeferred
        load_operator("/Workspace/slow/chatty.py").execute(task_context("run-1", TaskStateStore()))

    assert len(submits(slow_job)) == 1  # one run, read at once
    [run_id] = slow_job.runs
    assert slow_job.run_page_url(run_id) in str(error.value)
    row = repo.get("sales.orders")
    assert row["last_status"] == "Failed" and slow_job.run_page_url(run_id) in row["last_status_message"]


def test_the_trigger_polls_first_one_period_after_it_starts(slow_job, monkeypatch):
    import asyncio

    from airflow.providers.databricks.hooks.databricks import DatabricksHook
    from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

    from dataplatform.triggers.databricks_run import DatabricksRunTrigger

    slow_job.hold = True
    run_id = DatabricksHook("databricks_default").submit_run(one_task(SLOW))
    args = {"run_id": run_id, "databricks_conn_id": "databricks_default", "polling_period_seconds": 7}
    trigger = DatabricksRunTrigger(**args)
    path, kwargs = trigger.serialize()
    assert (path, kwargs) == (
        "dataplatform.triggers.databricks_run.DatabricksRunTrigger",
        DatabricksExecutionTrigger(**args).serialize()[1],
    )

    def polls() -> int:
        return sum(1 for _, p, body in slow_job.requests if p.endswith("/jobs/runs/get") and body["run_id"] == run_id)

    real_sleep, slept = asyncio.sleep, []

    async def sleep(seconds, *a, **kw):
        slept.append((seconds, polls()))
        slow_job.end(run_id, "TERMINATED", "SUCCESS")  # ends while the trigger waits
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)

    async def first_event():
        async for event in trigger.run():
            return event

    event = asyncio.run(first_event())

    assert slept == [(7, 0)]  # one period's wait, before any poll; then the ended run's event at once
    assert event.payload["run_id"] == run_id and '"result_state": "SUCCESS"' in event.payload["run_state"]
