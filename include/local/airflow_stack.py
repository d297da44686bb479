"""A real Airflow 3 stack on this machine: api-server, scheduler, dag-processor and triggerer as separate
processes (LocalExecutor), metadata on PostgreSQL, everything on 127.0.0.1.

Used by the real-Airflow test tier (``tests/airflow``); the demo can use it too. Each process runs in its own
process group and is stopped by that group's id. Passwords, the JWT secret and the Fernet key are made here
and never logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

PROCESSES = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],  # the log servers bind every interface: none here
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
USER = "admin"
VIEWER = "viewer"  # a read-only user (simple auth manager role viewer), for the operator page's tests
# The one file of the plugins folder (the operator page's AirflowPlugin): Airflow imports each file there as a
# top-level module, so the package itself stays on PYTHONPATH.
PLUGIN_FILE = "plugins/dataplatform_ui.py"


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sqlalchemy_url(libpq_url: str) -> str:
    """Airflow's metadata URL (psycopg2 driver) for a ``postgresql://`` URL, unix sockets included."""
    return "postgresql+psycopg2://" + libpq_url.split("://", 1)[1]


def git_bundle(repo_url: str, *, name: str = "git-dags", refresh_seconds: int = 60) -> dict[str, Any]:
    """A GitDagBundle on the whole repository (``.airflowignore`` keeps the parse to ``dags/``)."""
    return {
        "name": name,
        "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
        "kwargs": {"repo_url": repo_url, "tracking_ref": "main", "refresh_interval": refresh_seconds},
    }


@dataclass
class AirflowStack:
    """:param home: AIRFLOW_HOME (logs, passwords, bundle clones).
    :param metadata_url: a libpq URL of an empty database for Airflow's metadata.
    :param code_root: the project folder put on PYTHONPATH, as the image does (``/opt/airflow/project``).
    :param bundles: DAG bundle configs; none: the dags/ folder of ``code_root``.
    :param env: more environment for every process (connections, DATALOADER_* settings).
    """

    home: Path
    metadata_url: str
    code_root: Path
    bundles: list[dict[str, Any]] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 4
    port: int = field(default_factory=free_port)
    # not served (--skip-serve-logs), but set off 8793/8794 so that nothing of another stack is asked for logs
    log_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    # the passwords and the JWT secret start with this (the tests' "canary-": a check scans what the tests
    # wrote for it); the Fernet key cannot, it is a bare base64 key
    secret_prefix: str = ""
    password: str = field(default="", repr=False)
    viewer_password: str = field(default="", repr=False)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    _logs: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.password = self.password or self.secret_prefix + secrets.token_urlsafe(16)
        self.viewer_password = self.viewer_password or self.secret_prefix + secrets.token_urlsafe(12)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        # not the caller's Airflow, nor its package settings: the stack's are all in ``env``
        mine = ("AIRFLOW", "_AIRFLOW", "DATALOADER_", "SENTINEL_")
        base = {k: v for k, v in os.environ.items() if not k.startswith(mine)}
        settings = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),  # the default spawns 32 workers
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.home / "plugins"),  # PLUGIN_FILE only
            "AIRFLOW__CORE__FERNET_KEY": self._secret("fernet_key"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin,{VIEWER}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(self.metadata_url),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt_secret"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_ports[1]),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",  # new files and bundle versions seen within 10 s
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.home / "bundles"),
            "PYTHONPATH": f"{self.code_root}:{self.code_root / 'plugins'}",
        }
        if self.bundles:
            settings["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(self.bundles)
        else:
            settings["AIRFLOW__CORE__DAGS_FOLDER"] = str(self.code_root / "dags")
        return {**base, **settings, **self.env}

    def _secret(self, name: str) -> str:
        path = self.home / f".{name}"
        if not path.exists():
            from cryptography.fernet import Fernet

            value = (
                Fernet.generate_key().decode() if name == "fernet_key" else self.secret_prefix + secrets.token_hex(32)
            )
            path.write_text(value)
            path.chmod(0o600)
        return path.read_text()

    def airflow(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command against this stack."""
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.environment(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done

    def start(self, *, timeout: float = 600) -> AirflowStack:
        """Migrate the metadata database, start the four processes, wait for the API to answer."""
        (self.home / "plugins").mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.code_root / PLUGIN_FILE, self.home / PLUGIN_FILE)
        (self.home / "logs").mkdir(exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({USER: self.password, VIEWER: self.viewer_password}))
        self.airflow("db", "migrate", timeout=timeout)
        for name, args in PROCESSES.items():
            self.processes[name] = self._spawn(name, [a.format(port=self.port) for a in args], self.environment())
        self.wait_for(self._healthy, timeout=timeout, what="the API server's health check")
        return self

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> subprocess.Popen:
        log = open(self.home / "logs" / f"{name}.out", "ab")  # noqa: SIM115  (closed in stop())
        self._logs.append(log)
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and its children
        )

    @contextlib.contextmanager
    def api_server(self, *, base_url: str, port: int | None = None) -> Iterator[ApiServer]:
        """One more API server on this stack's home and metadata, with its own ``[api] base_url`` (e.g. one
        with a path, as Airflow is served behind a proxy). Started at once, ready after ``wait()`` (it can
        start while something else goes on); stopped, with its process group, at exit."""
        port = port or free_port()
        env = {**self.environment(), "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": base_url}
        name = f"api-server-{port}"
        proc = self._spawn(name, [a.format(port=port) for a in PROCESSES["api-server"]], env)
        try:
            yield ApiServer(self, proc, f"http://127.0.0.1:{port}", base_url, self.home / "logs" / f"{name}.out")
        finally:
            _terminate([proc], grace=30)

    def _healthy(self) -> bool:
        try:
            health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(p) or {}).get("status") == "healthy" for p in parts)

    def stop(self, *, grace: float = 30) -> None:
        """Stop every process (``_terminate``) and close their logs."""
        _terminate(self.processes.values(), grace=grace)
        for log in self._logs:
            log.close()

    def token(self) -> str:
        answer = httpx.post(f"{self.url}/auth/token", json={"username": USER, "password": self.password}, timeout=30)
        answer.raise_for_status()
        return answer.json()["access_token"]

    def client(self) -> httpx.Client:
        """An httpx client on ``/api/v2`` with a JWT of the admin user."""
        return httpx.Client(
            base_url=f"{self.url}/api/v2", headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
        )

    def api_connection(self) -> str:
        """The ``airflow_api`` connection (JSON form) of this stack: the monitors call the API through it."""
        return json.dumps({"conn_type": "http", "host": self.url, "login": USER, "password": self.password})

    def logs_tail(self, lines: int = 40) -> str:
        """The end of every process's output, for a failure message."""
        parts = []
        for name in PROCESSES:
            path = self.home / "logs" / f"{name}.out"
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["(no output)"]
            parts.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(parts) + f"\n(whole logs, task logs included: {self.home / 'logs'})"

    def wait_for(self, condition, *, timeout: float, what: str, interval: float = 2.0):
        """Poll ``condition()`` until it returns something truthy; on timeout, fail with the process logs."""
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise StackError(
                        f"airflow {name} exited {proc.returncode} while waiting for {what}\n" + self.logs_tail()
                    )
            if result := condition():
                return result
            if time.monotonic() > deadline:
                raise StackError(f"gave up after {timeout:.0f} s waiting for {what}\n{self.logs_tail()}")
            time.sleep(interval)


def _terminate(processes: Iterable[subprocess.Popen], *, grace: float) -> None:
    """SIGTERM each process group, SIGKILL what is left after ``grace`` seconds: the groups, and any
    descendant that left its group (a task runner may start a session of its own)."""
    import psutil

    processes = list(processes)
    descendants = []
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            descendants += psutil.Process(proc.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        # children (task runners, parsers) may outlive their parent in the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            child.kill()


@dataclass
class ApiServer:
    """An extra API server of a stack (``AirflowStack.api_server``): ``url`` is where it listens, ``base_url``
    where it says it is served."""

    stack: AirflowStack
    proc: subprocess.Popen = field(repr=False)
    url: str
    base_url: str
    log: Path

    def wait(self, *, timeout: float = 300) -> ApiServer:
        """Return once its health check answers (at the path of ``base_url``, as all its routes)."""
        health = f"{self.url}{urlsplit(self.base_url).path.rstrip('/')}/api/v2/monitor/health"

        def answers() -> bool:
            if self.proc.poll() is not None:
                output = self.log.read_text(errors="replace")[-3000:]
                raise StackError(f"the API server of {self.base_url} exited {self.proc.returncode}:\n{output}")
            try:
                return httpx.get(health, timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        self.stack.wait_for(answers, timeout=timeout, what=f"the API server of {self.base_url}", interval=0.5)
        return self


def import_settings(stack: AirflowStack, settings_file: Path) -> None:
    """Load an ``airflow_settings.yaml`` (Astro CLI format) into the stack: its connections and pools.

    Connections the stack's environment also defines (``AIRFLOW_CONN_*``) are served from there instead.
    """
    import yaml

    airflow = (yaml.safe_load(settings_file.read_text()) or {}).get("airflow") or {}
    connections = {
        c["conn_id"]: {
            "conn_type": c["conn_type"],
            **{k: c.get(f"conn_{k}") for k in ("host", "port", "schema", "login", "password")},
            "extra": json.dumps(c["conn_extra"]) if c.get("conn_extra") else None,
        }
        for c in airflow.get("connections") or []
    }
    pools = {
        p["pool_name"]: {"slots": p["pool_slot"], "description": p.get("pool_description") or ""}
        for p in airflow.get("pools") or []
    }
    for kind, objects in (("connections", connections), ("pools", pools)):
        path = stack.home / f"settings_{kind}.json"
        path.write_text(json.dumps(objects))
        stack.airflow(kind, "import", str(path), *(["--overwrite"] if kind == "connections" else []))
