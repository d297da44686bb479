"""A local stand-in for the Databricks Jobs API (runs/submit, runs/get, runs/get-output, runs/cancel).

It listens on 127.0.0.1 and runs each submitted ``spark_python_task`` as a local process, with the local
engine in place of the Databricks one (``--engine databricks`` becomes ``--engine local``), so that the
Databricks path of the loader (payload, deferral, run URL, output, cancel) runs end to end on one machine.
It answers both the 2.1 and 2.2 paths; it checks that a bearer token is sent but not its value.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORKSPACE = {"/Workspace/Shared/dataloader/": REPO_ROOT}


@dataclass
class Run:
    run_id: int
    payload: dict[str, Any]
    process: subprocess.Popen | None = None
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    stdout: str = ""
    stderr: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    def state(self) -> dict[str, Any]:
        state = {"life_cycle_state": self.life_cycle_state, "state_message": self.state_message}
        if self.result_state:
            state["result_state"] = self.result_state
        return state


class DatabricksStandIn:
    """:param workspace: workspace path prefixes mapped to local folders (where python_file is looked up).
    :param env: extra environment of the run processes (the secrets a secret scope would hold)."""

    def __init__(self, *, workspace: Mapping[str, Path] | None = None, env: Mapping[str, str] | None = None):
        self.workspace = dict(workspace or DEFAULT_WORKSPACE)
        self.env = dict(env or {})
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.runs: dict[int, Run] = {}
        self._ids = itertools.count(1001)
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for run in self.runs.values():
            if run.process and run.process.poll() is None:
                run.process.kill()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> DatabricksStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the API --------------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        # the sync client sends a GET's arguments as a query string, the async one as a JSON body
        body: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        if length:
            body.update(json.loads(request.rfile.read(length)))
        self.requests.append((method, parts.path, body))
        if not (request.headers.get("Authorization") or "").startswith("Bearer "):
            return self._reply(request, 401, {"error_code": "UNAUTHENTICATED", "message": "no bearer token"})
        endpoint = parts.path.split("/jobs/", 1)[-1]
        try:
            status, answer = {
                ("POST", "runs/submit"): self._submit,
                ("GET", "runs/get"): self._get,
                ("GET", "runs/get-output"): self._output,
                ("POST", "runs/cancel"): self._cancel,
            }[(method, endpoint)](body)
        except KeyError:
            status, answer = 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"{method} {parts.path}"}
        self._reply(request, status, answer)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _run(self, body: Mapping[str, Any]) -> Run | None:
        return self.runs.get(int(body.get("run_id", 0)))

    def _submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        task = body.get("spark_python_task")
        if not task or "python_file" not in task:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "spark_python_task.python_file required"}
        run = Run(next(self._ids), body)
        self.runs[run.run_id] = run
        threading.Thread(target=self._execute, args=(run, task), daemon=True).start()
        return 200, {"run_id": run.run_id}

    def _execute(self, run: Run, task: Mapping[str, Any]) -> None:
        params = ["local" if p == "databricks" else p for p in task.get("parameters", [])]
        script = self._local_path(task["python_file"])
        run.life_cycle_state = "RUNNING"
        run.process = subprocess.Popen(
            [sys.executable, str(script), *params],
            cwd=REPO_ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run.stdout, run.stderr = run.process.communicate()
        if run.result_state != "CANCELED":
            run.result_state = "SUCCESS" if run.process.returncode == 0 else "FAILED"
            run.state_message = "" if run.result_state == "SUCCESS" else (run.stderr.strip().splitlines() or [""])[-1]
        run.life_cycle_state = "TERMINATED"
        run.done.set()

    def _local_path(self, python_file: str) -> Path:
        for prefix, folder in self.workspace.items():
            if python_file.startswith(prefix):
                return folder / python_file.removeprefix(prefix)
        return Path(python_file)

    def _get(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        run = self._run(body)
        if run is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"run {body.get('run_id')} not found"}
        task = {"run_id": run.run_id, "task_key": "dataloader", "state": run.state()}
        return 200, {
            "job_id": run.run_id,
            "run_id": run.run_id,
            "run_name": run.payload.get("run_name"),
            "run_page_url": f"{self.url}/?o=0#job/{run.run_id}/run/{run.run_id}",
            "state": run.state(),
            "tasks": [task],
        }

    def _output(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        run = self._run(body)
        if run is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"run {body.get('run_id')} not found"}
        answer: dict[str, Any] = {"logs": run.stdout, "logs_truncated": False, "metadata": self._get(body)[1]}
        if run.result_state == "FAILED":
            answer["error"] = run.state_message
            answer["error_trace"] = run.stderr[-4000:]
        return 200, answer

    def _cancel(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        run = self._run(body)
        if run is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"run {body.get('run_id')} not found"}
        if run.life_cycle_state != "TERMINATED":
            run.result_state, run.state_message = "CANCELED", "Run cancelled through runs/cancel"
            run.life_cycle_state = "TERMINATING"
            if run.process:
                run.process.kill()
        return 200, {}
