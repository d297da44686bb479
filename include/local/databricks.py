"""A local stand-in for the Databricks Jobs API one-time runs: runs/submit, runs/get, runs/get-output, runs/cancel.

It listens on 127.0.0.1 and runs each submitted ``spark_python_task`` as a local process, with the local
engine in place of the Databricks one (``--engine databricks`` becomes ``--engine local``), so that the
Databricks path of the loader (payload, deferral, run URL, output, cancel) runs end to end on one machine.

It follows the Jobs API 2.1/2.2 as documented, so that what passes against it passes against Databricks
(``tests/local/test_databricks_standin.py`` checks its shapes against the official ``databricks-sdk``):

- ``runs/submit`` takes the multi-task form, ``{"run_name", "tasks": [{"task_key", <one cluster spec>,
  "spark_python_task": {"python_file", "parameters": [str]}}], ...}``, and refuses anything else with
  ``400 INVALID_PARAMETER_VALUE``: the 2.0 single-task form (task fields at the top level), unknown fields,
  a task without or with two cluster specs, parameters that are not strings.
- A run and each of its task runs have their own ids. ``runs/get`` answers ``state`` (``life_cycle_state``
  PENDING, RUNNING, TERMINATING, TERMINATED, SKIPPED or INTERNAL_ERROR; ``result_state``; ``state_message``),
  ``run_page_url`` and ``tasks`` (each with its ``run_id`` and state). A python file the workspace lacks
  ends the run in INTERNAL_ERROR, as a missing file does on Databricks.
- ``runs/get-output`` answers for a task run only (the top-level id of a run gets Databricks' own error):
  ``logs`` is the last 5 MB of the process's stdout and stderr, ``error``/``error_trace`` when it failed.
- ``runs/cancel`` moves an active run through TERMINATING (the process is stopped) to TERMINATED, CANCELED.

It answers both the 2.1 and 2.2 paths; it checks that a bearer token is sent but not its value.

    python -m include.local.databricks --port 8765 [--workspace /Workspace/Shared/dataloader/=.]

serves until interrupted, for an Airflow connection ``databricks_default`` of host ``127.0.0.1``, that
port and schema ``http``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORKSPACE = {"/Workspace/Shared/dataloader/": REPO_ROOT}
LOGS_LIMIT = 5 * 1024 * 1024  # get-output returns the last 5 MB of a spark_python_task's logs

# The fields of a runs/submit body (the SDK's JobsAPI.submit arguments) and of one of its tasks that the
# stand-in accepts (a subset of the SDK's SubmitTask: it only runs spark_python_task).
SUBMIT_FIELDS = frozenset(
    {
        "access_control_list",
        "budget_policy_id",
        "duration_target",
        "email_notifications",
        "environment_variables",
        "environments",
        "git_source",
        "health",
        "idempotency_token",
        "notification_settings",
        "performance_target",
        "queue",
        "run_as",
        "run_name",
        "tasks",
        "timeout_seconds",
        "usage_policy_id",
        "webhook_notifications",
    }
)
TASK_FIELDS = frozenset(
    {
        "task_key",
        "description",
        "existing_cluster_id",
        "new_cluster",
        "environment_key",
        "libraries",
        "spark_python_task",
        "timeout_seconds",
        "max_retries",
        "email_notifications",
        "notification_settings",
        "webhook_notifications",
    }
)
CLUSTER_SPECS = ("existing_cluster_id", "new_cluster", "environment_key")
TASK_TYPES = ("notebook_task", "spark_jar_task", "spark_python_task", "spark_submit_task", "python_wheel_task")
ACTIVE_STATES = ("PENDING", "RUNNING", "TERMINATING")
MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. "
    "Please retrieve the output of each individual task run instead."
)


class ApiError(Exception):
    """An error answer: HTTP status, Databricks error code, message."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class TaskRun:
    """One task of a submitted run, with its own run id, state and process."""

    run_id: int
    task_key: str
    spec: dict[str, Any]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    start_time: int = field(default_factory=_now_ms)
    end_time: int = 0
    logs: str = ""
    logs_truncated: bool = False
    process: subprocess.Popen | None = None

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"life_cycle_state": self.life_cycle_state, "state_message": self.state_message}
        if self.result_state:
            state["result_state"] = self.result_state
        return state


@dataclass
class Run:
    """A submitted (one-time) run: its payload, its task runs, and every state it went through."""

    run_id: int
    job_id: int
    payload: dict[str, Any]
    tasks: list[TaskRun]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    start_time: int = field(default_factory=_now_ms)
    end_time: int = 0
    cancel_requested: bool = False
    history: list[tuple[str, str | None]] = field(default_factory=lambda: [("PENDING", None)])
    released: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def task(self) -> TaskRun:
        return self.tasks[0]

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"life_cycle_state": self.life_cycle_state, "state_message": self.state_message}
        if self.result_state:
            state["result_state"] = self.result_state
        if self.result_state == "CANCELED":
            state["user_cancelled_or_timedout"] = True
        return state

    def move(self, life_cycle_state: str, result_state: str | None = None, message: str = "") -> None:
        """Move the run and its task to a state (the stand-in has one task per run)."""
        for target in (self, self.task):
            target.life_cycle_state, target.result_state, target.state_message = life_cycle_state, result_state, message
            if life_cycle_state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
                target.end_time = _now_ms()
        self.history.append((life_cycle_state, result_state))
        if life_cycle_state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            self.done.set()


class DatabricksStandIn:
    """:param workspace: workspace path prefixes mapped to local folders (where python_file is looked up).
    :param env: extra environment of the run processes (the secrets a secret scope would hold).
    :param hold: keep new runs PENDING (as while a cluster starts) until :meth:`release`.
    :param port: the port to listen on (0: any free port)."""

    def __init__(
        self,
        *,
        workspace: Mapping[str, Path] | None = None,
        env: Mapping[str, str] | None = None,
        hold: bool = False,
        port: int = 0,
    ):
        self.workspace = dict(workspace or DEFAULT_WORKSPACE)
        self.env = dict(env or {})
        self.hold = hold
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body)
        self.answers: list[tuple[str, int, dict[str, Any]]] = []  # (endpoint, HTTP status, body)
        self.runs: dict[int, Run] = {}  # by top-level run id
        self._task_runs: dict[int, tuple[Run, TaskRun]] = {}
        self._run_ids = itertools.count(641_000_000_001, 7)  # ids are large and unrelated to each other
        self._job_ids = itertools.count(880_000_000_001, 13)
        self._tokens: dict[str, int] = {}
        self._failing_gets: dict[int, ApiError] = {}  # by top-level run id: what runs/get answers instead
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DatabricksStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                standin._handle(self, "GET")

            def do_POST(self):
                standin._handle(self, "POST")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for run in self.runs.values():
            if run.task.process and run.task.process.poll() is None:
                run.task.process.kill()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> DatabricksStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests do to runs ------------------------------------------------------------------------

    def release(self, run_id: int) -> None:
        """Let a held run start (its cluster is up)."""
        self.runs[run_id].released.set()

    def end(self, run_id: int, life_cycle_state: str, result_state: str | None = None, message: str = "") -> None:
        """End a run that has not started as Databricks may and the local engine never does (e.g. SKIPPED)."""
        run = self.runs[run_id]
        with self._lock:
            run.move(life_cycle_state, result_state, message)
        run.released.set()

    def fail_gets(
        self,
        run_id: int,
        status: int = 403,
        error_code: str = "PERMISSION_DENIED",
        message: str = "User is not authorized to view this run.",
    ) -> None:
        """Answer ``runs/get`` of a run (and of its task runs) with an error until :meth:`heal`, as Databricks
        does to a token that lost its permission: what polls the run fails while the run goes on."""
        self._failing_gets[run_id] = ApiError(status, error_code, message)

    def heal(self, run_id: int) -> None:
        """Answer ``runs/get`` of that run again."""
        self._failing_gets.pop(run_id, None)

    def task_run_id(self, run_id: int) -> int:
        return self.runs[run_id].task.run_id

    def run_page_url(self, run_id: int) -> str:
        return f"{self.url}/?o=0#job/{self.runs[run_id].job_id}/run/{run_id}"

    # -- the API --------------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        # the sync client sends a GET's arguments as a query string, the async one as a JSON body
        body: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        try:
            if length:
                sent = json.loads(request.rfile.read(length))
                if not isinstance(sent, dict):
                    raise ApiError(400, "MALFORMED_REQUEST", "the request body must be a JSON object")
                body.update(sent)
            self.requests.append((method, parts.path, body))
            if not (request.headers.get("Authorization") or "").startswith("Bearer "):
                raise ApiError(401, "UNAUTHENTICATED", "no bearer token")
            endpoint = parts.path.split("/jobs/", 1)[-1]
            action = {
                ("POST", "runs/submit"): self._submit,
                ("GET", "runs/get"): self._get,
                ("GET", "runs/get-output"): self._output,
                ("POST", "runs/cancel"): self._cancel,
            }.get((method, endpoint))
            if action is None or not re.fullmatch(r"/api/2\.[12]/jobs/[a-z/-]+", parts.path):
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {parts.path}'")
            status, answer = 200, action(body)
        except json.JSONDecodeError as exc:
            status, answer = 400, {"error_code": "MALFORMED_REQUEST", "message": f"Invalid JSON given: {exc}"}
        except ApiError as exc:
            status, answer = exc.status, {"error_code": exc.error_code, "message": exc.message}
        self.answers.append((parts.path.split("/jobs/", 1)[-1], status, answer))
        self._reply(request, status, answer)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def _run_id(body: Mapping[str, Any]) -> int:
        value = body.get("run_id")
        if value is None:
            raise invalid("Missing required field: run_id")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise invalid(f"Invalid value for run_id: {value!r} is not an integer") from None

    def _find(self, body: Mapping[str, Any]) -> tuple[Run, TaskRun | None]:
        """The run named by ``run_id``: a top-level run (task None) or one of its task runs."""
        run_id = self._run_id(body)
        if run_id in self.runs:
            return self.runs[run_id], None
        if run_id in self._task_runs:
            return self._task_runs[run_id]
        raise invalid(f"Run {run_id} does not exist.")

    def _submit(self, body: dict[str, Any]) -> dict[str, Any]:
        tasks = validate_submit(body)
        token = body.get("idempotency_token")
        with self._lock:
            if token and token in self._tokens:
                return {"run_id": self._tokens[token]}
            task_runs = [TaskRun(next(self._run_ids), t["task_key"], t) for t in tasks]
            run = Run(next(self._run_ids), next(self._job_ids), body, task_runs)
            self.runs[run.run_id] = run
            for task in task_runs:
                self._task_runs[task.run_id] = (run, task)
            if token:
                self._tokens[token] = run.run_id
        if not self.hold:
            run.released.set()
        threading.Thread(target=self._execute, args=(run,), daemon=True).start()
        return {"run_id": run.run_id}

    def _execute(self, run: Run) -> None:
        run.released.wait()
        task = run.task
        with self._lock:
            if run.done.is_set():  # ended while it waited (cancelled, or ended by a test)
                return
            script = self._local_path(task.spec["spark_python_task"]["python_file"])
            if not script.is_file():
                run.move(
                    "INTERNAL_ERROR",
                    "FAILED",
                    f"Cannot read the python file {task.spec['spark_python_task']['python_file']}. "
                    "Please check that it exists and that the run's identity can read it.",
                )
                return
            params = ["local" if p == "databricks" else p for p in task.spec["spark_python_task"].get("parameters", [])]
            task.process = subprocess.Popen(
                [sys.executable, str(script), *params],
                cwd=REPO_ROOT,
                env={**os.environ, **self.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            task.start_time = _now_ms()
            run.move("RUNNING")
        logs, _ = task.process.communicate()
        with self._lock:
            task.logs = logs[-LOGS_LIMIT:]
            task.logs_truncated = len(logs) > LOGS_LIMIT
            if run.cancel_requested:
                run.move("TERMINATED", "CANCELED", "Run cancelled.")
                return
            failed = task.process.returncode != 0
            run.move("TERMINATING")  # the cluster and execution context are cleaned up
            if failed:
                run.move(
                    "TERMINATED",
                    "FAILED",
                    f"Task {task.task_key} failed with message: Workload failed, see run output for details. "
                    "This caused all downstream tasks to get skipped.",
                )
                task.state_message = "Workload failed, see run output for details"
            else:
                run.move("TERMINATED", "SUCCESS")

    def _local_path(self, python_file: str) -> Path:
        for prefix, folder in self.workspace.items():
            if python_file.startswith(prefix):
                return Path(folder) / python_file.removeprefix(prefix)
        return Path(python_file)

    def _get(self, body: dict[str, Any]) -> dict[str, Any]:
        run, task = self._find(body)
        if run.run_id in self._failing_gets:
            raise self._failing_gets[run.run_id]
        with self._lock:
            return self._task_json(run, task) if task else self._run_json(run)

    def _run_json(self, run: Run) -> dict[str, Any]:
        answer = {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "number_in_job": run.run_id,
            "run_name": run.payload.get("run_name", "Untitled"),
            "run_type": "SUBMIT_RUN",
            "run_page_url": self.run_page_url(run.run_id),
            "state": run.state(),
            "start_time": run.start_time,
            "tasks": [self._task_entry(run, task) for task in run.tasks],
            "attempt_number": 0,
        }
        if run.end_time:
            answer["end_time"] = run.end_time
        return answer

    def _task_entry(self, run: Run, task: TaskRun) -> dict[str, Any]:
        entry = {
            **{k: v for k, v in task.spec.items() if k != "task_key"},
            "task_key": task.task_key,
            "run_id": task.run_id,
            "state": task.state(),
            "run_page_url": f"{self.url}/?o=0#job/{run.job_id}/run/{task.run_id}",
            "start_time": task.start_time,
            "attempt_number": 0,
        }
        if task.end_time:
            entry["end_time"] = task.end_time
        return entry

    def _task_json(self, run: Run, task: TaskRun) -> dict[str, Any]:
        """runs/get of a task run: the run of one task (no ``tasks`` of its own)."""
        entry = self._task_entry(run, task)
        answer = {
            "job_id": run.job_id,
            "run_id": task.run_id,
            "run_name": run.payload.get("run_name", "Untitled"),
            "run_type": "SUBMIT_RUN",
            "run_page_url": entry["run_page_url"],
            "state": entry["state"],
            "start_time": task.start_time,
            "attempt_number": 0,
        }
        if task.end_time:
            answer["end_time"] = task.end_time
        return answer

    def _output(self, body: dict[str, Any]) -> dict[str, Any]:
        run, task = self._find(body)
        if task is None:
            raise invalid(MULTI_TASK_OUTPUT)
        with self._lock:
            answer: dict[str, Any] = {"metadata": self._task_json(run, task)}
            if task.life_cycle_state not in ACTIVE_STATES:
                answer["logs"] = task.logs
                answer["logs_truncated"] = task.logs_truncated
            if task.result_state in ("FAILED", "CANCELED") or task.life_cycle_state == "INTERNAL_ERROR":
                # the exception the job died of (its last line of output), else why the run ended
                lines = task.logs.strip().splitlines()
                answer["error"] = lines[-1] if lines and task.result_state == "FAILED" else task.state_message
                trace = task.logs.rfind("Traceback (most recent call last):")
                if trace >= 0:
                    answer["error_trace"] = task.logs[trace:]
            return answer

    def _cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        run, _ = self._find(body)  # a task run's id cancels its run: the stand-in's runs have one task
        with self._lock:
            if run.life_cycle_state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR") or run.cancel_requested:
                return {}
            run.cancel_requested = True
            process = run.task.process
            if process is None:  # not started: never will
                run.move("TERMINATING", None, "Run cancellation requested.")
                run.move("TERMINATED", "CANCELED", "Run cancelled.")
            else:
                run.move("TERMINATING", None, "Run cancellation requested.")
        run.released.set()
        if process is not None and process.poll() is None:
            process.terminate()
        return {}


def validate_submit(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check a runs/submit body as the Jobs API 2.1/2.2 does; returns its tasks."""
    misplaced = [k for k in (*TASK_TYPES, *CLUSTER_SPECS, "libraries") if k in body]
    if misplaced:
        raise invalid(
            f"{', '.join(misplaced)} at the top level of runs/submit is the Jobs API 2.0 single-task form; "
            'in 2.1 and later the task and its cluster go in `tasks` ([{"task_key": ..., ...}])'
        )
    unknown = sorted(set(body) - SUBMIT_FIELDS)
    if unknown:
        raise invalid(f"Unknown field(s) in runs/submit: {', '.join(unknown)}")
    _optional(body, "run_name", str, "run_name")
    _optional(body, "idempotency_token", str, "idempotency_token")
    if len(body.get("idempotency_token") or "") > 64:
        raise invalid("idempotency_token must be at most 64 characters")
    _optional_int(body, "timeout_seconds", "timeout_seconds")
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise invalid("Missing required field: tasks (a list of at least one task)")
    if len(tasks) > 100:
        raise invalid("A run can have at most 100 tasks")
    keys = set()
    for i, task in enumerate(tasks):
        where = f"tasks[{i}]"
        if not isinstance(task, dict):
            raise invalid(f"{where} must be an object")
        key = task.get("task_key")
        if not isinstance(key, str) or not re.fullmatch(r"[\w-]{1,100}", key):
            raise invalid(f"{where}.task_key is required: 1 to 100 letters, digits, '-' or '_'")
        if key in keys:
            raise invalid(f"Task key {key} is not unique")
        keys.add(key)
        _validate_task(task, f"{where} ({key})")
    if len(tasks) > 1:  # a limit of the stand-in, not of Databricks
        raise invalid(f"this stand-in runs one task per run, got {len(tasks)} tasks")
    return tasks


def _validate_task(task: Mapping[str, Any], where: str) -> None:
    kinds = [k for k in TASK_TYPES if k in task]
    if kinds != ["spark_python_task"]:
        raise invalid(
            f"{where}: exactly one task type is required; this stand-in runs spark_python_task only, got "
            f"{', '.join(kinds) or 'none'}"
        )
    unknown = sorted(set(task) - TASK_FIELDS)
    if unknown:
        raise invalid(f"{where}: unknown field(s): {', '.join(unknown)}")
    specs = [k for k in CLUSTER_SPECS if k in task]
    if len(specs) != 1:
        raise invalid(
            f"{where}: one cluster specification is required, got {len(specs)} ({', '.join(specs) or 'none'}): "
            "set existing_cluster_id, new_cluster or environment_key"
        )
    _optional(task, "existing_cluster_id", str, f"{where}.existing_cluster_id")
    _optional(task, "environment_key", str, f"{where}.environment_key")
    if "new_cluster" in task:
        cluster = task["new_cluster"]
        if not isinstance(cluster, dict) or not isinstance(cluster.get("spark_version"), str):
            raise invalid(f"{where}.new_cluster.spark_version is required")
        if "num_workers" not in cluster and "autoscale" not in cluster:
            raise invalid(f"{where}.new_cluster: num_workers or autoscale is required")
        _optional_int(cluster, "num_workers", f"{where}.new_cluster.num_workers")
    python = task["spark_python_task"]
    if not isinstance(python, dict) or not isinstance(python.get("python_file"), str) or not python["python_file"]:
        raise invalid(f"{where}.spark_python_task.python_file is required")
    parameters = python.get("parameters", [])
    if not isinstance(parameters, list) or not all(isinstance(p, str) for p in parameters):
        raise invalid(f"{where}.spark_python_task.parameters must be a list of strings")
    if python.get("source", "WORKSPACE") not in ("WORKSPACE", "GIT"):
        raise invalid(f"{where}.spark_python_task.source must be WORKSPACE or GIT")
    _optional_int(task, "timeout_seconds", f"{where}.timeout_seconds")
    _optional_int(task, "max_retries", f"{where}.max_retries")


def _optional(body: Mapping[str, Any], key: str, kind: type, where: str) -> None:
    if key in body and not isinstance(body[key], kind):
        raise invalid(f"{where} must be a {kind.__name__}, got {type(body[key]).__name__}")


def _optional_int(body: Mapping[str, Any], key: str, where: str) -> None:
    """An int64 field: a JSON number or a string of digits (the API takes both; Airflow sends strings)."""
    if key not in body:
        return
    value = body[key]
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise invalid(f"{where} must be an integer, got {value!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.local.databricks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--workspace",
        action="append",
        default=[],
        metavar="PREFIX=DIR",
        help=f"a workspace prefix served from a local folder (default {next(iter(DEFAULT_WORKSPACE))}=<repo>)",
    )
    args = parser.parse_args(argv)
    workspace = {prefix: Path(folder) for prefix, folder in (item.split("=", 1) for item in args.workspace)}
    standin = DatabricksStandIn(workspace=workspace or None, port=args.port).start()
    print(f"Databricks Jobs API stand-in on {standin.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
