"""`dataloader run` as an operator meets it: real processes killed with SIGKILL at extraction and at the
merge, then `dataloader run` again, with no SQL typed by hand; and the exit contract of a load."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from include.control.repository import ControlRepository
from include.dataloader.run_owner import Process, operator
from include.dataloader.target import LocalWarehouse, TableName
from tests.control.helpers import TOKEN_REQUEST, RecordingApi, dataloader_cli, execute
from tests.dataloader.conftest import control_row

KEY = "test.orders"
DATALOADER = Path(sys.executable).with_name("dataloader")
STAGE_HOOK = Path(__file__).with_name("stage_hook")
ROWS = [(1, "new", "2024-01-01 10:00"), (2, "new", "2024-01-02 11:00")]


@pytest.fixture
def orders(repo, source_url, source_sql, monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_SOURCE_URL", source_url)
    monkeypatch.setenv("DATALOADER_WAREHOUSE", str(tmp_path / "warehouse"))
    repo.upsert_dbconfig("test_source", "postgresql", {"url": "TEST_SOURCE_URL"}, "env")
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, status text, updated_at timestamp)")
    source_sql("INSERT INTO orders VALUES (%s, %s, %s), (%s, %s, %s)", [v for r in ROWS for v in r])
    fields = {"incremental_column": "updated_at", "incremental_type": "timestamp", "primary_key_columns": ["order_id"]}
    repo.add(control_row("orders", "incremental", **fields))
    return tmp_path / "warehouse"


@pytest.fixture
def cli(control_url, capsys):
    """The control CLI (``tests/control``'s ``cli``), not this folder's ``CliLoads`` of the same name."""
    return dataloader_cli(control_url, capsys)


@contextmanager
def blocked_at(stage, repo, control_url, tmp_path):
    """`dataloader run` in its own process, stopped at ``stage`` once its heartbeat has been recorded.
    Yields the process and a function that lets it go on; SIGKILLed at the end if still running."""
    signal_file = tmp_path / f"reached-{stage}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(STAGE_HOOK), os.environ.get("PYTHONPATH", "")]),
        "DATALOADER_TEST_BLOCK_AT": stage,
        "DATALOADER_TEST_BLOCK_SIGNAL": str(signal_file),
        "DATALOADER_CONTROL_DB_URL": control_url,
        "DATALOADER_HEARTBEAT_SECONDS": "0.2",
    }
    process = subprocess.Popen([str(DATALOADER), "run", KEY], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
        while not signal_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`dataloader run` did not reach {stage}: {process.communicate()[1]}")
            time.sleep(0.2)
        assert signal_file.read_text() == stage
        while (repo.run_owner(KEY, repo.get(KEY)["current_run_id"]) or {}).get("heartbeat_at") is None:
            if time.monotonic() > deadline:
                pytest.fail("the blocked `dataloader run` sent no heartbeat")
            time.sleep(0.2)
        yield process, lambda: signal_file.with_suffix(".release").touch()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.communicate()


def killed_at(stage, repo, control_url, tmp_path):
    """`dataloader run` killed with SIGKILL at ``stage``."""
    with blocked_at(stage, repo, control_url, tmp_path) as (process, _):
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process


def target_rows(spark, warehouse):
    df = LocalWarehouse(spark, warehouse).read(TableName("bronze", "test", "orders"))
    return sorted((r.order_id, r.status, str(r.updated_at)) for r in df.collect())


def assert_ended_by_the_next_run(repo, killed, killed_run, new_run):
    message = (
        f"Ended: dataloader run {killed_run} is gone: its process (pid {killed.pid} on host {socket.gethostname()}) "
        f"is no longer running (seen by {operator()}); the load's result was not recorded, the next run loads again"
    )
    runs = {r["run_id"]: r for r in repo.runs(KEY)}
    assert (runs[killed_run]["load_status"], runs[killed_run]["error_message"]) == ("Failed", message)
    assert runs[new_run]["load_status"] == "Succeeded"
    ended = [h for h in repo.history(KEY) if h["new_values"].get("last_status_message") == message]
    assert [h["change_source"] for h in ended] == [f"cli:{operator()}"]


def test_a_full_load_killed_at_extraction_is_ended_and_reloaded_by_the_next_run(
    repo, orders, control_url, tmp_path, spark, cli
):
    repo.update(KEY, {"load_strategy": "full"})
    killed = killed_at("extraction", repo, control_url, tmp_path)
    row = repo.get(KEY)
    killed_run = row["current_run_id"]
    assert (row["last_status"], killed_run[:5]) == ("In Progress", "cli__")
    assert repo.run_owner(KEY, killed_run)["run_pid"] == killed.pid

    code, out, err = cli("run", KEY)

    assert code == 0, err
    assert err.startswith(f"note: ended run {killed_run}: its process (pid {killed.pid} on host ")
    assert json.loads(out)["rows_read"] == 2
    assert target_rows(spark, orders) == [(1, "new", "2024-01-01 10:00:00"), (2, "new", "2024-01-02 11:00:00")]
    row = repo.get(KEY)
    assert (row["last_status"], row["rows_processed"]) == ("Succeeded", 2)
    assert_ended_by_the_next_run(repo, killed, killed_run, row["current_run_id"])


def test_an_incremental_load_killed_at_the_merge_is_ended_and_merged_by_the_next_run(
    repo, orders, control_url, tmp_path, spark, cli, source_sql
):
    assert cli("run", KEY)[0] == 0
    source_sql("UPDATE orders SET status = 'paid', updated_at = '2024-01-03 08:00' WHERE order_id = 1")
    source_sql("INSERT INTO orders VALUES (3, 'new', '2024-01-03 09:00')")
    killed = killed_at("merge", repo, control_url, tmp_path)
    killed_run = repo.get(KEY)["current_run_id"]
    assert target_rows(spark, orders)[0] == (1, "new", "2024-01-01 10:00:00")  # nothing merged yet

    code, out, err = cli("run", KEY)

    assert code == 0, err
    summary = json.loads(out)
    assert (summary["inserted"], summary["updated"]) == (1, 2)  # the row at the watermark merges onto itself
    assert target_rows(spark, orders) == [
        (1, "paid", "2024-01-03 08:00:00"),
        (2, "new", "2024-01-02 11:00:00"),
        (3, "new", "2024-01-03 09:00:00"),
    ]
    row = repo.get(KEY)
    assert (row["last_status"], row["incremental_value"]) == ("Succeeded", "2024-01-03 09:00:00")
    assert_ended_by_the_next_run(repo, killed, killed_run, row["current_run_id"])


def test_take_over_ends_a_silent_run_of_another_host_and_loads(repo, orders, control_url, cli, spark):
    elsewhere = ControlRepository(
        control_url, change_source="test", settings=Process("laptop-17", 4242, Process.current().started).settings()
    )
    elsewhere.queue(KEY, "cli__away")
    elsewhere.start(KEY, "cli__away")
    execute(control_url, "UPDATE historical_metadata SET heartbeat_at = now() - interval '6 minutes'")

    code, _out, err = cli("run", KEY, "--take-over")

    assert code == 0, err
    assert err == "note: ended run cli__away: it has sent no heartbeat for 6 min 0 s (pid 4242 on host laptop-17)\n"
    assert repo.get(KEY)["last_status"] == "Succeeded"
    assert [r["load_status"] for r in repo.runs(KEY)] == ["Failed", "Succeeded"]


def test_a_run_stopped_by_sigterm_says_so_in_the_row_at_once(repo, orders, control_url, tmp_path):
    with blocked_at("extraction", repo, control_url, tmp_path) as (process, _):
        run_id = repo.get(KEY)["current_run_id"]
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)

    who = f"SIGTERM (pid {process.pid} on host {socket.gethostname()})"
    assert (process.returncode, err) == (143, f"error: {KEY}: run {run_id} stopped by {who}\n")
    row = repo.get(KEY)
    message = f"Stopped by {who}; the load's result was not recorded, the next run loads again"
    assert (row["last_status"], row["last_status_message"]) == ("Failed", message)


def test_a_run_ended_meanwhile_elsewhere_exits_1_and_leaves_the_row_as_ended(repo, orders, control_url, tmp_path):
    with blocked_at("extraction", repo, control_url, tmp_path) as (process, go_on):
        run_id = repo.get(KEY)["current_run_id"]
        repo.cancel_current(KEY, "Cancelled by ops@elsewhere (dataloader tables cancel)")  # from another host
        go_on()
        _, err = process.communicate(timeout=300)

    assert (process.returncode, err) == (
        1,
        f"error: {KEY}: run {run_id} loaded, but the row was ended meanwhile and its result not recorded: "
        "Cancelled by ops@elsewhere (dataloader tables cancel); the next run loads again\n",
    )
    assert repo.get(KEY)["last_status"] == "Failed"
    assert repo.runs(KEY)[-1]["load_status"] == "Cancelled"


@pytest.fixture
def airflow(monkeypatch):
    api = RecordingApi(
        {
            ("POST", "/auth/token"): (201, {"access_token": "canary-jwt-1"}),
            ("GET", "/api/v2/dags/test.orders/dagRuns/manual__1"): (200, {"state": "failed"}),
            ("GET", "/api/v2/dags/test.orders/dagRuns/manual__2"): (200, {"state": "running"}),
        }
    )
    api.configure(monkeypatch)
    yield api.requests
    api.close()


def test_take_over_ends_an_airflow_run_that_airflow_says_has_ended(repo, orders, cli, airflow):
    repo.queue(KEY, "manual__1")
    repo.start(KEY, "manual__1")

    code, _, err = cli("run", KEY, "--take-over")

    assert code == 0, err
    assert err == "note: ended run manual__1: Airflow run ended failed\n"
    assert airflow == [
        TOKEN_REQUEST,
        ("GET", "/api/v2/dags/test.orders/dagRuns/manual__1", "Bearer canary-jwt-1", None),
    ]
    assert [(r["run_id"][:8], r["load_status"]) for r in repo.runs(KEY)] == [
        ("manual__", "Failed"),
        ("cli__202", "Succeeded"),
    ]
    ended = repo.runs(KEY)[0]["error_message"]
    assert ended == (
        f"Ended: Airflow run manual__1 ended failed (seen by {operator()}); the load's result was not recorded"
    )
    assert repo.get(KEY)["last_status"] == "Succeeded"


def test_take_over_leaves_an_airflow_run_that_is_still_running(repo, orders, cli, airflow):
    repo.queue(KEY, "manual__2")
    code, _, err = cli("run", KEY, "--take-over")
    assert code == 2
    assert err.startswith(f"error: {KEY}: last_status is Queued for run manual__2 (Airflow says that run is running);")
    assert repo.get(KEY)["current_run_id"] == "manual__2"


def test_a_load_that_fails_exits_1_with_the_recorded_error_and_no_traceback(repo, orders, cli, source_sql):
    source_sql("DROP TABLE orders")

    code, out, err = cli("run", KEY, "--run-id", "cli__1")

    assert (code, out) == (1, "")
    recorded = repo.get(KEY)["last_status_message"]
    assert recorded.startswith("SourceTableNotFound: test.orders: source table public.orders not found")
    assert err == f"error: {KEY}: run cli__1 failed: {recorded}\n"


def test_a_refused_load_exits_2_with_one_line(repo, orders, cli):
    repo.queue(KEY, "scheduled__1")
    code, _, err = cli("run", KEY)
    assert code == 2
    assert err == (
        f"error: {KEY}: last_status is Queued for run scheduled__1 (an Airflow run holds it); wait for that run, "
        f"use `dataloader run {KEY} --take-over` if its owner is gone, or `dataloader tables cancel {KEY}`\n"
    )
