"""Many workers queueing, starting and finishing the same control row at once, as threads and as processes,
through the lifecycle and the repository on the real control database (tests/control/test_race.py races
single transitions; here whole runs race, and the change history is replayed to prove the outcome).

Asserted: at any time exactly one run owns the row (the history, replayed in order, shows each run's
Queued, In Progress, Succeeded with nothing of another worker in between); no transition is lost or
doubled (one historical_metadata row per run that won, none for a worker told the row was busy)."""

from __future__ import annotations

import threading

import pytest

from tests.control.helpers import add
from tests.reliability import race_worker
from tests.reliability.race_worker import KEY, WATERMARK

WORKERS = 8


def in_threads(url, calls):
    """``calls``: (function, args) per worker, each with a barrier in front of its race."""
    barrier = threading.Barrier(len(calls))
    results = {}

    def work(name, fn, args):
        try:
            results[name] = fn(url, name, barrier, *args[1:])
        except BaseException as e:  # said in the results: a dead thread would only show as a missing name
            results[name] = f"error: {e!r}"

    threads = [threading.Thread(target=work, args=(args[0], fn, args)) for fn, args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def in_processes(fork):
    def run(url, calls):
        barrier, queue = fork.Barrier(len(calls)), fork.Queue()
        processes = [
            fork.Process(target=race_worker.in_process, args=(queue, fn, url, args[0], barrier, *args[1:]))
            for fn, args in calls
        ]
        for p in processes:
            p.start()
        results = dict(queue.get(timeout=120) for _ in processes)
        for p in processes:
            p.join(timeout=60)
            assert p.exitcode == 0
        return results

    return run


@pytest.fixture(params=["threads", "processes"])
def spawn(request):
    return in_threads if request.param == "threads" else in_processes(request.getfixturevalue("forkserver"))


def no_errors(results: dict) -> dict:
    errors = {name: result for name, result in results.items() if result.startswith("error")}
    assert not errors, f"workers raised: {errors}"
    return results


def replay(history):
    """The history of the row's status, as (run, [status, ...], {change sources}) per holder in turn."""
    segments = []
    for entry in history:
        if entry["change_type"] != "UPDATE":  # the row's insert
            continue
        new = entry["new_values"] or {}
        if "current_run_id" in new:
            segments.append((new["current_run_id"], [], set()))
        if "last_status" in new and segments:
            segments[-1][1].append(new["last_status"])
            segments[-1][2].add(entry["change_source"])
    return segments


def test_whole_runs_racing_for_one_row_own_it_one_at_a_time(repo, control_url, spawn):
    add(repo)
    results = {}
    for round_no in range(4):
        calls = [(race_worker.one_run, (f"r{round_no}-w{i}", round_no * 100 + i)) for i in range(WORKERS)]
        won = no_errors(spawn(control_url, calls))
        assert "succeeded" in won.values()  # the row was free: one of the racers got it
        results.update(won)

    succeeded = [run for run, result in results.items() if result == "succeeded"]
    assert set(results.values()) <= {"succeeded", "busy"}
    runs = repo.runs(KEY)
    assert sorted(r["run_id"] for r in runs) == sorted(succeeded)  # none for a busy worker, one per winner
    assert {r["load_status"] for r in runs} == {"Succeeded"}
    segments = replay(repo.history(KEY))
    assert sorted(run for run, _, _ in segments) == sorted(succeeded)  # no run took the row twice
    for run, statuses, sources in segments:
        assert (statuses, sources) == (["Queued", "In Progress", "Succeeded"], {f"worker:{run}"})
    row = repo.get(KEY)
    last = segments[-1][0]
    assert (row["last_status"], row["current_run_id"]) == ("Succeeded", last)
    assert row["rows_processed"] == next(r["rows_processed"] for r in runs if r["run_id"] == last)


OUTCOMES = {"succeed": "Succeeded", "fail": "Failed", "cancel": "Cancelled", "orphan": "Failed"}


def test_racing_ends_of_one_run_leave_exactly_one_outcome(repo, control_url, spawn):
    """A load succeeding while it fails, a monitor cancels it and the reconciler ends it: one end wins."""
    add(repo)
    for round_no in range(3):
        run_id = f"run-{round_no}"
        repo.queue(KEY, run_id)
        repo.start(KEY, run_id)
        seen = len(repo.history(KEY))

        calls = [(race_worker.one_finish, (f"{how}-{n}", run_id, how)) for how in OUTCOMES for n in range(2)]
        results = no_errors(spawn(control_url, calls))

        [winner] = [name for name, result in results.items() if result == "won"]
        [run] = [r for r in repo.runs(KEY) if r["run_id"] == run_id]
        assert run["load_status"] == OUTCOMES[winner.split("-")[0]]
        ends = [h for h in repo.history(KEY)[seen:] if "last_status" in (h["new_values"] or {})]
        assert [h["change_source"] for h in ends] == [f"worker:{winner.split('-')[0]}"]  # one end, recorded once
        if winner.startswith("succeed"):  # its watermark landed with it; a loser's end moved nothing
            assert repo.get(KEY)["incremental_value"] == WATERMARK
