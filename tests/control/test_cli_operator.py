"""Operator commands of `dataloader`: cancel, reset, and what a run holding the row means for a new one.

Real control database; the Airflow and Databricks APIs are a local HTTP server that records every
request, so the exact requests are checked."""

import os
import socket
import subprocess

import pytest

from include.control.repository import ControlRepository
from include.dataloader.run_owner import Process, operator, process_started
from tests.control.helpers import TOKEN_REQUEST, RecordingApi, add, execute

KEY = "sales.orders"
WHO = operator()
RUN_PATH = "manual__2024-01-01T00%3A00%3A00"  # the run id, quoted in the URL


@pytest.fixture
def apis(monkeypatch):
    """Airflow's REST API and Databricks' Jobs API on 127.0.0.1, recording every request."""
    api = RecordingApi(
        {
            ("POST", "/auth/token"): (201, {"access_token": "canary-jwt-1"}),
            ("PATCH", f"/api/v2/dags/sales.orders/dagRuns/{RUN_PATH}"): (200, {"state": "failed"}),
            ("POST", "/api/2.1/jobs/runs/cancel"): (200, {}),
        }
    )
    api.configure(monkeypatch)
    yield api.requests
    api.close()


@pytest.fixture(autouse=True)
def no_apis(monkeypatch):
    for name in ("DATALOADER_AIRFLOW_API_URL", "DATABRICKS_HOST", "DATABRICKS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def hold(control_url, run_id, process=None, *, start=True):
    """The row held by ``run_id``, queued (and started) by ``process``."""
    repo = ControlRepository(control_url, change_source="test", settings=process.settings() if process else None)
    assert repo.queue(KEY, run_id) is not None
    if start:
        assert repo.start(KEY, run_id) is not None


@pytest.fixture
def gone_process():
    """A process of this host that has ended (its identity was read while it ran)."""
    child = subprocess.Popen(["sleep", "60"])
    process = Process(socket.gethostname(), child.pid, process_started(child.pid))
    child.kill()
    child.wait()
    return process


def silence(control_url, run_id, minutes):
    execute(
        control_url,
        "UPDATE historical_metadata SET heartbeat_at = now() - make_interval(mins => %s) WHERE run_id = %s",
        (minutes, run_id),
    )


def test_cancel_ends_an_airflow_run_and_fails_it_and_its_databricks_run_through_the_apis(cli, repo, control_url, apis):
    add(repo)
    run_id = "manual__2024-01-01T00:00:00"
    hold(control_url, run_id)
    repo.set_databricks_run_url(KEY, run_id, "https://dbc.example/?o=1#job/7/run/4242")

    code, out, err = cli("tables", "cancel", KEY, "--reason", "source maintenance")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"cancelled run {run_id} of {KEY}; the row is Failed",
        f"Airflow run {run_id} failed",
        "Databricks run 4242 cancelled",
    ]
    assert apis == [
        TOKEN_REQUEST,
        ("PATCH", f"/api/v2/dags/sales.orders/dagRuns/{RUN_PATH}", "Bearer canary-jwt-1", {"state": "failed"}),
        ("POST", "/api/2.1/jobs/runs/cancel", "Bearer canary-dapi-1", {"run_id": 4242}),
    ]
    row = repo.get(KEY)
    message = f"Cancelled by {WHO} (dataloader tables cancel): source maintenance"
    assert (row["last_status"], row["last_status_message"]) == ("Failed", message)
    assert (repo.runs(KEY)[-1]["load_status"], repo.runs(KEY)[-1]["error_message"]) == ("Cancelled", message)
    [change] = [h for h in repo.history(KEY) if h["new_values"].get("last_status") == "Failed"]
    assert change["change_source"] == f"cli:{WHO}"


def test_cancel_without_configured_apis_says_what_it_did_not_touch(cli, repo, control_url):
    add(repo)
    hold(control_url, "scheduled__1", start=False)
    code, out, _ = cli("tables", "cancel", KEY)
    assert code == 0
    assert out.splitlines()[1].startswith("Airflow run scheduled__1 not touched: set DATALOADER_AIRFLOW_API_URL")
    assert repo.get(KEY)["last_status"] == "Failed"


def test_cancel_stops_a_live_cli_run_of_this_host(cli, repo, control_url):
    add(repo)
    child = subprocess.Popen(["sleep", "60"])
    try:
        hold(control_url, "cli__a", Process(socket.gethostname(), child.pid, process_started(child.pid)))
        code, out, _ = cli("tables", "cancel", KEY)
        assert code == 0
        assert out.splitlines()[1] == f"stopped its process (pid {child.pid} on host {socket.gethostname()})"
        assert child.wait(timeout=30) == -15  # SIGTERM
    finally:
        child.kill()
    assert repo.runs(KEY)[-1]["load_status"] == "Cancelled"


def test_cancel_of_a_row_without_a_run_is_refused(cli, repo):
    add(repo)
    code, _, err = cli("tables", "cancel", KEY)
    assert code == 2
    assert err == (
        f"error: {KEY}: no run to cancel: last_status is empty (only a Queued or In Progress row has one); "
        f"see `dataloader tables show {KEY}`\n"
    )


def test_reset_puts_a_failed_row_back_to_ready_with_its_retries_cleared(cli, repo, control_url):
    add(repo)
    hold(control_url, "run-1")
    repo.fail(KEY, "run-1", "boom")
    execute(control_url, "UPDATE table_control SET retry_count = 3 WHERE control_key = %s", (KEY,))

    code, out, _ = cli("tables", "reset", KEY)

    assert (code, out) == (0, f"reset {KEY}: ready for its next load, retry count 0\n")
    row = repo.get(KEY)
    assert (row["last_status"], row["retry_count"], row["last_status_message"]) == (None, 0, f"[Reset by {WHO}] boom")
    change = repo.history(KEY)[-1]
    assert change["change_source"] == f"cli:{WHO}"
    assert change["new_values"]["retry_count"] == 0


def test_reset_of_a_running_row_is_refused_with_the_fix(cli, repo, control_url):
    add(repo)
    hold(control_url, "run-1")
    code, _, err = cli("tables", "reset", KEY)
    assert code == 2
    assert err == (
        f"error: {KEY}: only a Failed row can be reset; last_status is In Progress: "
        f"cancel it first: `dataloader tables cancel {KEY}`\n"
    )
    assert repo.get(KEY)["last_status"] == "In Progress"


def test_a_live_cli_run_keeps_the_row_even_with_take_over(cli, repo, control_url):
    add(repo)
    me = Process.current()
    hold(control_url, "cli__live", me)
    code, _, err = cli("run", KEY, "--take-over")
    assert code == 2
    assert err == (
        f"error: {KEY}: last_status is In Progress for run cli__live (its process ({me}) is still running); "
        f"wait for that run, use `dataloader run {KEY} --take-over` if its owner is gone, "
        f"or `dataloader tables cancel {KEY}`\n"
    )
    assert "Traceback" not in err


def test_a_silent_cli_run_of_another_host_needs_take_over(cli, repo, control_url):
    add(repo)
    elsewhere = Process("laptop-17", 4242, Process.current().started)
    hold(control_url, "cli__away", elsewhere)
    silence(control_url, "cli__away", 2)

    code, _, err = cli("run", KEY)  # under the limit, and not provable from here anyway
    assert code == 2
    assert "(its last heartbeat was 2 min 0 s ago (pid 4242 on host laptop-17), under the 5 min 0 s limit)" in err

    silence(control_url, "cli__away", 6)
    code, _, err = cli("run", KEY)
    assert code == 2
    assert "it has sent no heartbeat for 6 min 0 s (pid 4242 on host laptop-17); --take-over would end it)" in err
    assert repo.get(KEY)["last_status"] == "In Progress"


def test_an_inactive_row_is_refused_naming_the_field_and_the_fix(cli, repo):
    add(repo, is_active=False)
    code, _, err = cli("run", KEY)
    assert (code, err) == (
        2,
        f"error: {KEY}: is_active is false, so it is not loaded; switch it on with "
        f"`dataloader tables update {KEY} --set is_active=true`\n",
    )


def test_the_owner_is_recorded_when_the_run_is_queued(repo, control_url, gone_process):
    add(repo)
    hold(control_url, "cli__x", gone_process, start=False)
    owner = repo.run_owner(KEY, "cli__x")
    assert (owner["run_host"], owner["run_pid"], owner["run_process_started"]) == (
        gone_process.host,
        gone_process.pid,
        gone_process.started,
    )
    assert os.getpid() != gone_process.pid


def test_cancel_with_an_unreachable_airflow_api_still_cancels_and_says_what_to_do(cli, repo, control_url, monkeypatch):
    add(repo)
    hold(control_url, "scheduled__1")
    monkeypatch.setenv("DATALOADER_AIRFLOW_API_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("DATALOADER_AIRFLOW_API_USER", "ops")
    monkeypatch.setenv("DATALOADER_AIRFLOW_API_PASSWORD", "canary-s3cret")

    code, out, _ = cli("tables", "cancel", KEY)

    assert code == 0
    note = out.splitlines()[1]
    assert note.startswith("Airflow run scheduled__1 could not be failed (ConnectError: ")
    assert note.endswith("): mark it failed in the Airflow UI")
    assert "s3cret" not in out
    assert repo.get(KEY)["last_status"] == "Failed"


def test_cancel_of_a_cli_run_of_another_host_says_where_to_stop_it(cli, repo, control_url):
    add(repo)
    hold(control_url, "cli__away", Process("laptop-17", 4242, Process.current().started))
    code, out, _ = cli("tables", "cancel", KEY)
    assert code == 0
    assert out.splitlines() == [
        f"cancelled run cli__away of {KEY}; the row is Failed",
        "its process (pid 4242 on host laptop-17) may still be loading: stop it on laptop-17",
    ]
