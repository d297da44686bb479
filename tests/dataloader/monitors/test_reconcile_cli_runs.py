"""The reconciler and `dataloader run` runs (`cli__...`): ended only when their owner is provably gone.

Real control database and real processes; Airflow is not asked about a CLI run (the port refuses)."""

import re
import socket
import subprocess
from datetime import timedelta

import pytest

from include.control.repository import ControlRepository
from include.dataloader.monitors.reconcile import reconcile
from include.dataloader.run_owner import Process, process_started
from tests.control.helpers import add, execute

HERE = socket.gethostname()


class NoAirflow:
    def run_state(self, dag_id, run_id):
        raise AssertionError(f"Airflow asked about {dag_id} {run_id}")

    fail_run = trigger = run_state


@pytest.fixture
def ended_process():
    child = subprocess.Popen(["sleep", "60"])
    process = Process(HERE, child.pid, process_started(child.pid))
    child.kill()
    child.wait()
    return process


def held(repo, control_url, key, run_id, process, *, silent_minutes=0):
    add(repo, key)
    owner = ControlRepository(control_url, change_source="test", settings=process.settings())
    owner.queue(key, run_id)
    owner.start(key, run_id)
    owner.beat(key, run_id)
    execute(
        control_url,
        "UPDATE historical_metadata SET heartbeat_at = now() - make_interval(mins => %s) WHERE run_id = %s",
        (silent_minutes, run_id),
    )


def test_cli_runs_whose_owner_is_gone_are_ended_and_the_others_left(repo, control_url, ended_process):
    away = Process("laptop-17", 4242, ended_process.started)
    held(repo, control_url, "t.dead", "cli__dead", ended_process)
    held(repo, control_url, "t.silent", "cli__silent", away, silent_minutes=6)
    held(repo, control_url, "t.quiet", "cli__quiet", away, silent_minutes=2)
    held(repo, control_url, "t.live", "cli__live", Process.current(), silent_minutes=60)  # its process answers

    corrections = reconcile(repo, NoAirflow())

    silent = corrections[1].pop("cli_run")  # its age grows while the test runs on a loaded machine
    assert re.fullmatch(r"it has sent no heartbeat for 6 min \d+ s \(pid 4242 on host laptop-17\)", silent)
    assert corrections == [
        {
            "control_key": "t.dead",
            "run_id": "cli__dead",
            "was": "In Progress",
            "cli_run": f"its process ({ended_process}) is no longer running",
        },
        {"control_key": "t.silent", "run_id": "cli__silent", "was": "In Progress"},
    ]
    status = {k: repo.get(k)["last_status"] for k in ("t.dead", "t.silent", "t.quiet", "t.live")}
    assert status == {"t.dead": "Failed", "t.silent": "Failed", "t.quiet": "In Progress", "t.live": "In Progress"}
    message = repo.get("t.dead")["last_status_message"]
    assert message == (
        f"Ended: dataloader run cli__dead is gone: its process ({ended_process}) is no longer running "
        "(seen by the reconciler); the load's result was not recorded, the next run loads again"
    )
    [change] = [h for h in repo.history("t.dead") if h["new_values"].get("last_status") == "Failed"]
    assert (change["change_source"], change["new_values"]["last_status_message"]) == ("test", message)
    assert repo.runs("t.silent")[-1]["load_status"] == "Failed"


def test_a_run_that_beats_again_keeps_its_row(repo, control_url):
    """The silence is checked in the statement that ends the run, not only before it."""
    away = Process("laptop-17", 4242, Process.current().started)
    held(repo, control_url, "t.back", "cli__back", away, silent_minutes=6)
    repo.beat("t.back", "cli__back")
    assert repo.end_orphaned_run("t.back", "cli__back", "gone", silent_for=timedelta(minutes=5)) is None
    assert repo.get("t.back")["last_status"] == "In Progress"


def test_a_pid_of_another_pid_namespace_is_not_looked_up_here(repo, control_url, ended_process):
    """A container with host networking shares the host name, not the pids: only silence counts."""
    other_container = Process(HERE, ended_process.pid, ended_process.started, pid_namespace=1)
    held(repo, control_url, "t.boxed", "cli__boxed", other_container, silent_minutes=2)

    assert reconcile(repo, NoAirflow()) == []
    assert repo.get("t.boxed")["last_status"] == "In Progress"
    assert repo.run_owner("t.boxed", "cli__boxed")["run_pid_namespace"] == 1
    assert Process.current().pid_namespace not in (None, 1)
