"""The real-Airflow tier: one Airflow 3 stack per test session, deployed from a git bundle.

The api-server, scheduler, dag-processor and triggerer run as separate processes (LocalExecutor) with their
metadata in a database of the session's PostgreSQL server. The DAGs come from a GitDagBundle on a local bare
repository holding this checkout's files; the project folder is on PYTHONPATH as the image has it (the
triggerer imports triggers and deadline callbacks from there). The scheduler creates no scheduled runs
(``use_job_schedule`` off): every run here is one a test asked for, through the REST API or the CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from include.local import postgres
from include.local.airflow_stack import AirflowStack, free_port, git_bundle, import_settings
from tests import canary
from tests.conftest import ROOT, airflow_conn_json, serve_webhook

RUN_TIMEOUT = 420  # seconds: task processes start slowly on two loaded cores
TERMINAL = ("success", "failed")


class GitDeployment:
    """A bare repository tracking ``main`` (what the bundle clones) and a work clone to push changes from."""

    def __init__(self, base: Path):
        self.work = base / "work"
        self.bare = base / "deploy.git"
        files = (
            subprocess.run(
                ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
            )
            .stdout.decode()
            .split("\0")
        )
        for name in filter(None, files):
            if (ROOT / name).is_file():
                (self.work / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, self.work / name)
        self.git("init", "-q", "-b", "main")
        self.commit("the project as deployed")
        subprocess.run(["git", "clone", "-q", "--bare", str(self.work), str(self.bare)], check=True)
        self.git("remote", "add", "origin", str(self.bare))

    def git(self, *args: str) -> str:
        identity = ["-c", "user.name=tier", "-c", "user.email=tier@example.invalid"]
        return subprocess.run(
            ["git", *identity, *args], cwd=self.work, capture_output=True, text=True, check=True
        ).stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def push(self, message: str, changes: dict[str, str]) -> str:
        """Write ``changes`` (path -> new text), commit and push to main; the new commit's sha."""
        for name, text in changes.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        sha = self.commit(message)
        self.git("push", "-q", "origin", "main")
        return sha


class Tier:
    """The running stack as its operator sees it: the REST API, the CLI, the control and source databases."""

    def __init__(
        self,
        stack: AirflowStack,
        control_url: str,
        source_url: str,
        alerts,
        deployment: GitDeployment,
        databricks_port: int,
    ):
        self.stack = stack
        self.control_url = control_url
        self.source_url = source_url
        self.alerts = alerts
        self.deployment = deployment
        self.databricks_port = databricks_port  # where databricks_default points (test_databricks.py serves it)
        self.api = stack.client()

    # --- REST API ---
    def get(self, path: str, **params):
        answer = self.api.get(path, params=params)
        if answer.status_code == 401:  # the JWT expired: a long session
            self.api = self.stack.client()
            answer = self.api.get(path, params=params)
        return answer

    def call(self, method: str, path: str, **kwargs):
        answer = self.api.request(method, path, **kwargs)
        if answer.status_code == 401:
            self.api = self.stack.client()
            answer = self.api.request(method, path, **kwargs)
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{quote(dag_id, safe='')}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        run = self.call(
            "POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return run["dag_run_id"]

    def run_path(self, dag_id: str, run_id: str) -> str:
        return f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", self.run_path(dag_id, run_id))["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], str | None]:
        answer = self.call("GET", self.run_path(dag_id, run_id) + "/taskInstances")
        return {(ti["task_id"], ti["map_index"]): ti["state"] for ti in answer["task_instances"]}

    def wait_run(self, dag_id: str, run_id: str, *, timeout: float = RUN_TIMEOUT) -> str:
        """The run's final state (success or failed)."""
        state = self.stack.wait_for(
            lambda: (s := self.run_state(dag_id, run_id)) in TERMINAL and s,
            timeout=timeout,
            what=f"run {run_id} of {dag_id} to end",
        )
        return state

    def wait_task(self, dag_id: str, run_id: str, task_id: str, state: str, *, timeout: float = RUN_TIMEOUT):
        def reached():
            states = self.task_states(dag_id, run_id)
            if states.get((task_id, -1)) == state:
                return True
            assert self.run_state(dag_id, run_id) not in TERMINAL, f"the run ended first: {states}"
            return False

        self.stack.wait_for(reached, timeout=timeout, what=f"{dag_id}.{task_id} to be {state}")

    def wait_dags(self, *dag_ids: str, timeout: float = RUN_TIMEOUT, check=None) -> dict[str, dict]:
        """Wait until the dag-processor has parsed these DAGs (and ``check(dag)`` holds); their details."""

        def parsed():
            found = {}
            for dag_id in dag_ids:
                answer = self.get(f"/dags/{quote(dag_id, safe='')}/details")
                if answer.status_code != 200 or (check and not check(answer.json())):
                    return None
                found[dag_id] = answer.json()
            return found

        return self.stack.wait_for(parsed, timeout=timeout, what=f"the DAGs {dag_ids} to be parsed")

    def refresh_snapshot(self, *dag_ids: str) -> None:
        """Run the snapshot DAG (as its schedule would) and wait for these loader DAGs to be parsed."""
        run_id = self.trigger("dataloader_control_snapshot")
        state = self.wait_run("dataloader_control_snapshot", run_id)
        assert state == "success", self.task_states("dataloader_control_snapshot", run_id)
        self.wait_dags(*dag_ids)
        for dag_id in dag_ids:
            self.unpause(dag_id)

    def alerts_for(self, path: str) -> list[dict]:
        return [body for p, body in self.alerts.posted if p == path]

    def wait_alert(self, path: str, match, *, timeout: float = RUN_TIMEOUT) -> dict:
        def found():
            return next((a for a in self.alerts_for(path) if match(a)), None)

        return self.stack.wait_for(found, timeout=timeout, what=f"an alert at {path}")

    # --- the CLI ---
    def cli(self, *args: str) -> str:
        return self.stack.airflow(*args).stdout

    # --- databases ---
    def source(self, query: str, params=None) -> list[tuple]:
        with psycopg.connect(self.source_url) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def repository(self):
        from include.control.repository import ControlRepository

        return ControlRepository(self.control_url, change_source="test")

    def history(self, control_key: str, run_id: str | None = None) -> list[dict]:
        runs = self.repository().runs(control_key)
        return [r for r in runs if run_id is None or r["run_id"] == run_id]

    def warehouse_table(self, control_key: str):
        """The Delta target of a row, read with delta-rs (never as plain parquet)."""
        from deltalake import DeltaTable

        row = self.repository().get(control_key)
        path = self.stack.home / "dataloader" / "warehouse" / row["destination_catalog"]
        return DeltaTable(str(path / row["destination_schema"] / row["destination_table_name"])).to_pyarrow_table()


def _database(pg_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(query)
    return postgres.database_url(pg_url, name)


@pytest.fixture(scope="package")
def alerts():
    """One webhook receiver for the session; each control row posts to its own path."""
    with serve_webhook() as server:
        server.base = server.url.removesuffix("/hook")
        yield server


@pytest.fixture(scope="package")
def tier(tmp_path_factory, pg_url, control_template, alerts):
    """The real Airflow stack, for this package only: stopped when its last test ends, so the other
    packages do not share two cores with an idle scheduler, dag-processor, triggerer and API server."""
    base = tmp_path_factory.mktemp("airflow-tier")
    control_url = _database(pg_url, "tier_control", template=control_template)
    source_url = _database(pg_url, "tier_source")
    deployment = GitDeployment(base / "git")
    databricks_port = free_port()
    stack = AirflowStack(
        home=base / "home",
        metadata_url=_database(pg_url, "tier_airflow"),
        code_root=ROOT,
        secret_prefix="canary-",  # see tests/canary.py
        bundles=[git_bundle(f"file://{deployment.bare}", refresh_seconds=10)],
        env={
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs the tests ask for
            "AIRFLOW_CONN_DATALOADER_CONTROL": airflow_conn_json(control_url),
            "AIRFLOW_CONN_TIER_SOURCE": airflow_conn_json(source_url),
            "TIER_SOURCE_URL": source_url,
            "DATALOADER_RETRIES": "0",
            # a backfill's runs wait for each other: look again soon, but not sooner than a loaded scheduler
            # handles the waiting task's own defer (6 s seen): Airflow 3.3.2 fails a deferred task whose trigger
            # fired first and which is queued again by then (the apache/airflow#66374 race)
            "DATALOADER_CLAIM_POLL_SECONDS": "15",
            "SENTINEL_RETRIES": "0",  # a killed compare task fails at once: the test clears it
            "DATALOADER_CHANGE_POLL_SECONDS": "2",
            "DATALOADER_CHANGE_WAIT_MINUTES": "15",
            # the Jobs API stand-in of test_databricks.py (over airflow_settings.yaml's workspace)
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(
                {
                    "conn_type": "databricks",
                    "host": "127.0.0.1",
                    "port": databricks_port,
                    "schema": "http",
                    "password": "canary-dapi-tier-token",
                }
            ),
            "DATALOADER_DATABRICKS_POLL_SECONDS": "5",  # the first poll one period after deferring
        },
    )
    stack.env = {**stack.env, "AIRFLOW_CONN_AIRFLOW_API": stack.api_connection()}  # what the monitors use
    stack.home.mkdir()
    # the stack's login and signing secrets themselves (canaries): SimpleAuthManager reads the admin's password
    # from passwords.json, the API signs its tokens with .jwt_secret
    canary.by_design(stack.home / "passwords.json", "the admin's password file, read by SimpleAuthManager")
    canary.by_design(stack.home / ".jwt_secret", "the JWT signing secret, read by the api-server")
    copy = "a copy of this repository, whose tests hold the canaries"
    canary.by_design(base / "git", f"the git deployment: {copy}")
    canary.by_design(stack.home / "bundles", f"the DAG bundle's clones: {copy}")
    try:
        stack.start()
        # the first-run checklist (README): connections and pools; the snapshot DAG starts unpaused
        import_settings(stack, ROOT / "airflow_settings.yaml")
        tier = Tier(stack, control_url, source_url, alerts, deployment, databricks_port)
        snapshot_dag = tier.wait_dags("dataloader_control_snapshot")["dataloader_control_snapshot"]
        assert snapshot_dag["is_paused"] is False, (
            "the snapshot DAG must start unpaused: no loader DAG exists without it"
        )
        tier.repository().upsert_dbconfig("tier_source", "postgresql", {"url": "TIER_SOURCE_URL"}, "env")
        yield tier
    finally:
        stack.stop()


def control_row(table: str, strategy: str, **fields):
    from include.control.model import ControlRow

    return ControlRow.from_mapping(
        {
            "control_key": f"tier.{table}",
            "db_config_key": "tier_source",
            "source_schema": "public",
            "source_table_name": table,
            "destination_schema": "tier",
            "destination_table_name": table,
            "load_strategy": strategy,
            "cron": "@daily",
            **fields,
        }
    )


ORDERS = {"incremental_column": "updated_at", "incremental_type": "timestamp", "primary_key_columns": ["order_id"]}


def create_orders(tier: Tier, table: str, rows: int = 12) -> None:
    """An orders table at the source, one row every 6 hours from 2024-01-01 06:00."""
    tier.source(f"CREATE TABLE {table} (order_id int PRIMARY KEY, status text, updated_at timestamp)")
    tier.source(
        f"INSERT INTO {table} SELECT g, 'new', timestamp '2024-01-01' + g * interval '6 hours' "
        f"FROM generate_series(1, {rows}) g"
    )


def wait(condition, *, timeout: float, what: str, interval: float = 2.0):
    """Poll a condition outside the stack (e.g. a table's rows); fail with ``what``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return result
