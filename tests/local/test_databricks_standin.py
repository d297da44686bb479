"""The Databricks Jobs API stand-in behaves as the documented API, and its shapes are the official SDK's.

Every request and answer here is checked against ``databricks-sdk`` (the Jobs service classes generated
from Databricks' API specification), so the stand-in cannot drift from the real API silently.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

from include.local.databricks import MULTI_TASK_OUTPUT, SUBMIT_FIELDS, TASK_FIELDS, DatabricksStandIn
from tests.dags.test_databricks_path import one_task, wait_for

SCRIPTS = {
    "ok.py": "import sys\nprint('starting', file=sys.stderr)\nprint('{\"summary\": {\"args\": %r}}' % sys.argv[1:])\n",
    "fails.py": "raise ValueError('source table public.orders not found')\n",
    "slow.py": "import time\nprint('working', flush=True)\ntime.sleep(60)\n",
}


@pytest.fixture
def standin(tmp_path):
    for name, text in SCRIPTS.items():
        (tmp_path / name).write_text(text)
    with DatabricksStandIn(workspace={"/Workspace/t/": tmp_path}) as standin:
        yield standin


def call(standin, method: str, endpoint: str, body: dict | None = None) -> tuple[int, dict]:
    """One API call as a client sends it (JSON body for POST, query string for GET) to a stand-in or a URL."""
    url = f"{getattr(standin, 'url', standin)}/api/2.2/jobs/{endpoint}"
    data = None
    if method == "GET":
        url += "?" + "&".join(f"{k}={v}" for k, v in (body or {}).items())
    else:
        data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": "Bearer canary-dapi-t"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def submit(standin, body) -> int:
    status, answer = call(standin, "POST", "runs/submit", body)
    assert status == 200, answer
    return answer["run_id"]


def finished(standin, run_id) -> dict:
    standin.runs[run_id].done.wait(20)
    return call(standin, "GET", "runs/get", {"run_id": run_id})[1]


def roundtrips(cls, answer: dict) -> None:
    """``answer`` is exactly a ``cls`` of the SDK: no field it does not know, every enum value one it has."""
    assert cls.from_dict(answer).as_dict() == answer


# -- the shapes are the SDK's -----------------------------------------------------------------------


def test_the_submit_fields_are_the_sdk_s():
    assert set(inspect.signature(jobs.JobsAPI.submit).parameters) - {"self"} == SUBMIT_FIELDS
    assert {f.name for f in dataclasses.fields(jobs.SubmitTask)} >= TASK_FIELDS


def test_the_operator_s_payload_is_a_valid_sdk_submit_task():
    from dataplatform.hooks.databricks_runs import submit_payload

    body = submit_payload(
        run_name="dataloader sales.orders load manual__1",
        cluster={
            "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_D4ds_v5", "num_workers": 2}
        },
        python_file="/Workspace/Shared/dataloader/include/dataloader/job.py",
        parameters=["--row", "{}"],
    )
    assert set(body) <= SUBMIT_FIELDS
    [task] = body["tasks"]
    roundtrips(jobs.SubmitTask, task)
    assert task["task_key"] == "dataloader" and task["spark_python_task"]["parameters"] == ["--row", "{}"]


def test_runs_get_and_get_output_answer_sdk_shapes(standin):
    run_id = submit(standin, one_task("/Workspace/t/ok.py", "--action", "load"))
    run = finished(standin, run_id)
    roundtrips(jobs.Run, run)
    [task] = run["tasks"]

    status, output = call(standin, "GET", "runs/get-output", {"run_id": task["run_id"]})

    assert status == 200
    roundtrips(jobs.RunOutput, output)
    assert output["metadata"]["run_id"] == task["run_id"]
    assert output["logs"] == "starting\n{\"summary\": {\"args\": ['--action', 'load']}}\n"
    assert output["logs_truncated"] is False


def test_the_official_client_drives_it(standin):
    client = WorkspaceClient(host=standin.url, token="canary-dapi-test", auth_type="pat")
    task = jobs.SubmitTask(
        task_key="load",
        existing_cluster_id="0101-test",
        spark_python_task=jobs.SparkPythonTask(python_file="/Workspace/t/ok.py", parameters=["x"]),
    )
    run_id = client.jobs.submit(run_name="sdk", tasks=[task]).run_id
    standin.runs[run_id].done.wait(20)

    run = client.jobs.get_run(run_id)
    assert (run.state.life_cycle_state, run.state.result_state) == (
        jobs.RunLifeCycleState.TERMINATED,
        jobs.RunResultState.SUCCESS,
    )
    assert run.tasks[0].run_id != run_id
    assert client.jobs.get_run_output(run.tasks[0].run_id).logs.endswith('{"summary": {"args": [\'x\']}}\n')
    with pytest.raises(InvalidParameterValue, match="Retrieving the output of runs with multiple tasks"):
        client.jobs.get_run_output(run_id)


# -- runs and task runs -----------------------------------------------------------------------------


def test_a_run_and_its_task_run_have_their_own_ids_and_states(standin):
    run_id = submit(standin, one_task("/Workspace/t/ok.py"))
    run = finished(standin, run_id)

    [task] = run["tasks"]
    assert task["run_id"] != run_id and task["task_key"] == "t"
    assert run["state"] == {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}
    assert task["state"] == run["state"]
    assert run["run_page_url"] == standin.run_page_url(run_id) and run["job_id"] != run_id
    assert standin.runs[run_id].history == [
        ("PENDING", None),
        ("RUNNING", None),
        ("TERMINATING", None),
        ("TERMINATED", "SUCCESS"),
    ]
    status, task_run = call(standin, "GET", "runs/get", {"run_id": task["run_id"]})
    assert status == 200 and task_run["run_id"] == task["run_id"] and "tasks" not in task_run


def test_get_output_of_the_top_level_run_is_refused_as_databricks_does(standin):
    run_id = submit(standin, one_task("/Workspace/t/ok.py"))
    finished(standin, run_id)

    assert call(standin, "GET", "runs/get-output", {"run_id": run_id}) == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": MULTI_TASK_OUTPUT},
    )
    assert call(standin, "GET", "runs/get", {"run_id": 5}) == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": "Run 5 does not exist."},
    )


def test_a_failed_task_gives_its_error_and_trace(standin):
    run_id = submit(standin, one_task("/Workspace/t/fails.py"))
    run = finished(standin, run_id)

    assert (run["state"]["life_cycle_state"], run["state"]["result_state"]) == ("TERMINATED", "FAILED")
    assert run["state"]["state_message"].startswith("Task t failed with message: Workload failed")
    output = call(standin, "GET", "runs/get-output", {"run_id": run["tasks"][0]["run_id"]})[1]
    roundtrips(jobs.RunOutput, output)
    assert output["error"] == "ValueError: source table public.orders not found"
    assert output["error_trace"].startswith("Traceback (most recent call last):")


def test_a_missing_python_file_is_an_internal_error(standin):
    run_id = submit(standin, one_task("/Workspace/t/absent.py"))
    run = finished(standin, run_id)

    assert run["state"]["life_cycle_state"] == "INTERNAL_ERROR"
    assert "Cannot read the python file /Workspace/t/absent.py" in run["state"]["state_message"]
    roundtrips(jobs.Run, run)


def test_a_run_can_end_skipped(standin):
    standin.hold = True
    run_id = submit(standin, one_task("/Workspace/t/ok.py"))
    standin.end(run_id, "SKIPPED", None, "Skipped: a concurrent run is active")

    run = finished(standin, run_id)
    assert run["state"] == {"life_cycle_state": "SKIPPED", "state_message": "Skipped: a concurrent run is active"}
    roundtrips(jobs.Run, run)


def test_runs_get_of_a_run_can_be_made_to_fail_while_the_run_goes_on(standin):
    standin.hold = True
    run_id = submit(standin, one_task("/Workspace/t/ok.py"))
    task_run_id = standin.task_run_id(run_id)
    standin.fail_gets(run_id)

    for asked in (run_id, task_run_id):
        assert call(standin, "GET", "runs/get", {"run_id": asked}) == (
            403,
            {"error_code": "PERMISSION_DENIED", "message": "User is not authorized to view this run."},
        )
    assert standin.runs[run_id].history == [("PENDING", None)]  # the run itself is untouched

    standin.heal(run_id)
    standin.release(run_id)
    assert finished(standin, run_id)["state"]["result_state"] == "SUCCESS"


# -- cancel -----------------------------------------------------------------------------------------


def test_cancel_moves_a_running_run_through_terminating(standin):
    run_id = submit(standin, one_task("/Workspace/t/slow.py"))
    wait_for(lambda: standin.runs[run_id].life_cycle_state == "RUNNING")

    assert call(standin, "POST", "runs/cancel", {"run_id": run_id}) == (200, {})
    run = finished(standin, run_id)

    assert run["state"] == {
        "life_cycle_state": "TERMINATED",
        "result_state": "CANCELED",
        "state_message": "Run cancelled.",
        "user_cancelled_or_timedout": True,
    }
    roundtrips(jobs.Run, run)
    assert standin.runs[run_id].history[1:] == [("RUNNING", None), ("TERMINATING", None), ("TERMINATED", "CANCELED")]
    assert call(standin, "POST", "runs/cancel", {"run_id": run_id}) == (200, {})  # an ended run: nothing to do


def test_cancel_of_a_pending_run_means_it_never_starts(standin):
    standin.hold = True
    run_id = submit(standin, one_task("/Workspace/t/ok.py"))

    call(standin, "POST", "runs/cancel", {"run_id": run_id})
    run = finished(standin, run_id)

    assert run["state"]["result_state"] == "CANCELED"
    assert standin.runs[run_id].history == [("PENDING", None), ("TERMINATING", None), ("TERMINATED", "CANCELED")]
    assert standin.runs[run_id].task.process is None


# -- request validation -----------------------------------------------------------------------------

TASK = {"task_key": "t", "existing_cluster_id": "c", "spark_python_task": {"python_file": "/Workspace/t/ok.py"}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"run_name": "x", "existing_cluster_id": "c", "spark_python_task": {"python_file": "/f.py"}},
            "spark_python_task, existing_cluster_id at the top level of runs/submit is the Jobs API 2.0 single-task",
        ),
        ({"run_name": "x"}, "Missing required field: tasks"),
        ({"tasks": [TASK], "cluster": "c"}, "Unknown field(s) in runs/submit: cluster"),
        ({"tasks": [{**TASK, "task_key": "a b"}]}, "tasks[0].task_key is required"),
        ({"tasks": [TASK, TASK]}, "Task key t is not unique"),
        ({"tasks": [TASK, {**TASK, "task_key": "u"}]}, "this stand-in runs one task per run, got 2 tasks"),
        (
            {"tasks": [{k: v for k, v in TASK.items() if k != "existing_cluster_id"}]},
            "one cluster specification is required, got 0",
        ),
        (
            {"tasks": [{**TASK, "new_cluster": {"spark_version": "15.4.x-scala2.12", "num_workers": 1}}]},
            "got 2 (existing_cluster_id, new_cluster)",
        ),
        ({"tasks": [{**TASK, "existing_cluster_id": None, "new_cluster": {"num_workers": 1}}]}, "got 2"),
        (
            {
                "tasks": [
                    {"task_key": "t", "new_cluster": {"num_workers": 1}, "spark_python_task": {"python_file": "/f.py"}}
                ]
            },
            "new_cluster.spark_version is required",
        ),
        (
            {
                "tasks": [
                    {
                        "task_key": "t",
                        "new_cluster": {"spark_version": "15.4.x-scala2.12"},
                        "spark_python_task": {"python_file": "/f.py"},
                    }
                ]
            },
            "num_workers or autoscale is required",
        ),
        ({"tasks": [{**TASK, "spark_python_task": {}}]}, "tasks[0] (t).spark_python_task.python_file is required"),
        (
            {"tasks": [{**TASK, "spark_python_task": {"python_file": "/f.py", "parameters": ["--n", 3]}}]},
            "parameters must be a list of strings",
        ),
        ({"tasks": [{**TASK, "notebook_task": {"notebook_path": "/n"}}]}, "exactly one task type is required"),
        ({"tasks": [TASK], "timeout_seconds": "soon"}, "timeout_seconds must be an integer"),
    ],
)
def test_a_submit_body_is_validated(standin, body, message):
    status, answer = call(standin, "POST", "runs/submit", body)

    assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert message in answer["message"]
    assert standin.runs == {}


def test_integers_may_be_sent_as_strings_as_airflow_does(standin):
    body = {"tasks": [{**TASK, "timeout_seconds": "600"}], "timeout_seconds": 3600}
    assert call(standin, "POST", "runs/submit", body)[0] == 200


def test_an_idempotency_token_gives_back_the_same_run(standin):
    body = {**one_task("/Workspace/t/ok.py"), "idempotency_token": "load-1"}
    assert submit(standin, body) == submit(standin, body)
    assert len(standin.runs) == 1


def test_requests_need_a_bearer_token(standin):
    request = urllib.request.Request(f"{standin.url}/api/2.1/jobs/runs/get?run_id=1")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 401


# -- its own process --------------------------------------------------------------------------------


def test_it_runs_as_its_own_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "ok.py").write_text(SCRIPTS["ok.py"])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "include.local.databricks",
            "--port",
            str(port),
            "--workspace",
            f"/Workspace/t/={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == f"Databricks Jobs API stand-in on http://127.0.0.1:{port}"
        standin = f"http://127.0.0.1:{port}"
        run_id = submit(standin, one_task("/Workspace/t/ok.py", "a"))
        deadline = time.monotonic() + 20
        while call(standin, "GET", "runs/get", {"run_id": run_id})[1]["state"]["life_cycle_state"] != "TERMINATED":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        task_run = call(standin, "GET", "runs/get", {"run_id": run_id})[1]["tasks"][0]["run_id"]
        assert call(standin, "GET", "runs/get-output", {"run_id": task_run})[1]["logs"].endswith("['a']}}\n")
    finally:
        process.terminate()
        process.wait(10)
