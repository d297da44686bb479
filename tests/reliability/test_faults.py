"""Database faults mid-run, on a PostgreSQL of the suite's own that it stops (``pg_ctl stop -m fast``: every
session ended, as at a restart) and starts again: the source of a load, the control database, one side
of a sentinel comparison. Asserted: a clear error naming what was lost, no partial state, success on retry.

The load runs in its own process (the real CLI), paused at the stage where the database is stopped."""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from include.control import migrate
from include.control.repository import ControlRepository
from include.dataloader.cli import main as dataloader
from include.dataloader.target import LocalWarehouse, TableName
from include.sentinel.cli import main as sentinel
from tests.dataloader.conftest import control_row
from tests.reliability import kill_child

KEY = "test.orders"
_names = itertools.count()


def sql(url, query, params=None):
    with psycopg.connect(url) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def paused(fork, target, args, marker: Path, during):
    """Run ``target`` in a process paused at its stage; ``during()`` runs while it waits; returns
    (exit status, stderr)."""
    child = fork.Process(target=target, args=args)
    child.start()
    deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
    while not marker.exists():
        assert child.is_alive() and time.monotonic() < deadline, marker.with_suffix(".stderr").read_text()
        time.sleep(0.05)
    try:
        during()
    finally:
        marker.with_suffix(".release").touch()
        child.join(timeout=300)
    return child.exitcode, marker.with_suffix(".stderr").read_text()


@pytest.fixture
def restarted(fault_server):
    """The fault server, certainly running again after the test."""
    yield fault_server
    with contextlib.suppress(subprocess.CalledProcessError):  # it was running already
        fault_server.start()


def load_env(kill_env, control_url, source_url, tmp_path):
    return {
        "DATALOADER_CONTROL_DB_URL": control_url,
        "DATALOADER_WAREHOUSE": str(tmp_path / "warehouse"),
        "FAULT_SOURCE_URL": source_url,
        "SPARK_REMOTE": kill_env.spark_remote,
        "RELIABILITY_PAUSE": "1",
    }


def orders(repo, url):
    sql(url, "CREATE TABLE orders (order_id int PRIMARY KEY, status text)")
    sql(url, "INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 50) g")
    repo.upsert_dbconfig("fault_source", "postgresql", {"url": "FAULT_SOURCE_URL"}, "env")
    repo.add(control_row("orders", "full", db_config_key="fault_source"))


def target_ids(spark, tmp_path):
    warehouse = LocalWarehouse(spark, tmp_path / "warehouse")
    name = TableName("bronze", "test", "orders")
    return sorted(r.order_id for r in warehouse.read(name).collect()) if warehouse.exists(name) else None


def test_the_source_restarted_mid_load_fails_it_naming_the_source_and_a_retry_loads(
    restarted, kill_env, repo, control_url, tmp_path, spark, monkeypatch
):
    source = restarted.database(f"faults_source_{next(_names)}")
    orders(repo, source)
    env = load_env(kill_env, control_url, source, tmp_path)
    marker = tmp_path / "paused"

    code, err = paused(
        kill_env.fork, kill_child.run_until_killed, ("before_extraction", KEY, env, str(marker)), marker, restarted.stop
    )

    row = repo.get(KEY)
    run = row["current_run_id"]
    assert (code, row["last_status"]) == (1, "Failed")
    message = row["last_status_message"]
    assert message.startswith(f"SourceUnreachable: {KEY}: the source database (dbconfig fault_source, postgresql)")
    assert "public.orders" in message
    assert err == f"error: {KEY}: run {run} failed: {message}\n"
    assert [r["load_status"] for r in repo.runs(KEY)] == ["Failed"]
    assert target_ids(spark, tmp_path) is None  # nothing half-written: the target was never created

    restarted.start()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert dataloader(["run", KEY]) == 0
    assert target_ids(spark, tmp_path) == list(range(1, 51))
    assert [r["load_status"] for r in repo.runs(KEY)] == ["Failed", "Succeeded"]


@pytest.fixture(scope="session")
def fault_control_template(fault_server):
    url = fault_server.database("control_template")
    migrate.upgrade(url)
    return "control_template"


@pytest.fixture
def fault_control(restarted, fault_control_template):
    name = f"faults_control_{next(_names)}"
    with psycopg.connect(restarted.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{fault_control_template}"')
    return restarted.url.replace("/postgres?", f"/{name}?")


def test_the_control_database_lost_before_the_result_is_recorded_is_said_and_the_next_run_recovers(
    restarted, fault_control, kill_env, source_url, tmp_path, spark, monkeypatch
):
    repo = ControlRepository(fault_control, change_source="test")
    orders(repo, source_url)
    env = load_env(kill_env, fault_control, source_url, tmp_path)
    marker = tmp_path / "paused"

    code, err = paused(
        kill_env.fork, kill_child.run_until_killed, ("committed", KEY, env, str(marker)), marker, restarted.stop
    )

    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"error: {KEY}: run cli__") and ", but the control database could not be reached" in line
    assert " loaded bronze.test.orders, " in line and "the row stays In Progress for this run until the next" in line
    assert target_ids(spark, tmp_path) == list(range(1, 51))  # the load's one commit, whole

    restarted.start()
    row = repo.get(KEY)
    assert row["last_status"] == "In Progress"  # held by a process that is gone: the next run ends it
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert dataloader(["run", KEY]) == 0
    assert target_ids(spark, tmp_path) == list(range(1, 51))  # reloaded, not doubled
    assert [r["load_status"] for r in repo.runs(KEY)] == ["Failed", "Succeeded"]
    assert repo.runs(KEY)[0]["error_message"].startswith(f"Ended: dataloader run {row['current_run_id']} is gone")


def test_the_control_database_restarted_while_a_load_reads_does_not_fail_it(
    restarted, fault_control, kill_env, source_url, tmp_path, spark
):
    repo = ControlRepository(fault_control, change_source="test")
    orders(repo, source_url)
    env = load_env(kill_env, fault_control, source_url, tmp_path)
    marker = tmp_path / "paused"

    def restart():
        restarted.stop()
        restarted.start()

    code, err = paused(
        kill_env.fork, kill_child.run_until_killed, ("before_extraction", KEY, env, str(marker)), marker, restart
    )

    assert code == 0, err  # every call to the control database opens its own connection
    assert repo.get(KEY)["last_status"] == "Succeeded"
    assert target_ids(spark, tmp_path) == list(range(1, 51))


def comparison_result(folder):
    newest = lambda pattern: max(folder.glob(pattern), key=lambda p: p.stat().st_mtime_ns)  # noqa: E731
    [row] = list(csv.DictReader(newest("comparison_report_*.csv").open()))  # the failed try wrote one too
    sync = newest("sync_target_*.sql")
    body = [line for line in sync.read_text().splitlines() if not line.startswith("--")]
    fields = ("status", "source_rows", "target_rows", "matching", "missing_in_target", "missing_in_source", "different")
    return {f: row[f] for f in fields}, body


def test_one_side_of_a_comparison_restarted_mid_run_fails_the_table_and_resume_completes_it(
    restarted, kill_env, new_database, tmp_path, monkeypatch
):
    urls = {"source": new_database(), "target": restarted.database(f"faults_dr_{next(_names)}")}
    for url in urls.values():
        sql(url, "CREATE TABLE ledger (id int PRIMARY KEY, memo text)")
        sql(url, "INSERT INTO ledger SELECT g, 'memo ' || g FROM generate_series(1, 20000) g")
    sql(urls["target"], "UPDATE ledger SET memo = 'changed' WHERE id IN (5, 15005)")
    env = {"RELIABILITY_PROD_URL": urls["source"], "RELIABILITY_DR_URL": urls["target"], "RELIABILITY_PAUSE": "1"}
    config = tmp_path / "ledger.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source_database": {"db_type": "postgresql", "url_env": "RELIABILITY_PROD_URL"},
                "target_database": {"db_type": "postgresql", "url_env": "RELIABILITY_DR_URL"},
                "tables": [{"table_name": "ledger", "primary_key": ["id"], "chunk_size": 2000}],
                "options": {"output_dir": str(tmp_path / "out"), "max_threads": 1},
            }
        )
    )
    for name in ("RELIABILITY_PROD_URL", "RELIABILITY_DR_URL"):
        monkeypatch.setenv(name, env[name])
    assert sentinel(["compare", str(config), "--output-dir", str(tmp_path / "reference")]) == 1
    marker = tmp_path / "paused"

    code, err = paused(
        kill_env.fork, kill_child.compare_until_killed, ([str(config)], env, 4, str(marker)), marker, restarted.stop
    )

    assert code == 2
    failed = [line for line in err.splitlines() if line.startswith("error: ")]
    [line] = failed  # the driver's words (AdminShutdown, or a closed connection) depend on the moment
    assert line.startswith("error: table ledger: the target database could not be reached or stopped answering (")
    assert line.endswith(
        "); the chunks compared before are checkpointed: once it answers, resume with --resume <session> "
        "(see --list-sessions)"
    )
    [state] = (tmp_path / "out" / "comparison_state").glob("session_*.json")
    session = json.loads(state.read_text())
    assert session["status"] != "completed"

    restarted.start()
    assert sentinel(["compare", str(config), "--resume", session["session_id"][:8]]) == 1
    assert comparison_result(tmp_path / "out") == comparison_result(tmp_path / "reference")
