"""The control row's lifecycle under clears, retries, backfills and concurrent runs (real PostgreSQL)."""

import pytest

from include.control.lifecycle import Lifecycle, RowBusy, RowInactive, step_errors
from tests.control.helpers import add

KEY = "sales.orders"
SUMMARY = {"inserted": 3, "updated": 1, "deleted": 0, "watermark": "2024-01-02 00:00:00", "message": None}


def life(repo, run_id, live=None):
    return Lifecycle(repo, KEY, run_id, is_live=(live or {}).get)


def history(repo, run_id):
    [run] = [r for r in repo.runs(KEY) if r["run_id"] == run_id]
    return run["load_status"], run["rows_processed"], run["error_message"]


def loaded(repo, run_id, live=None):
    run = life(repo, run_id, live)
    run.queue()
    run.start()
    return run.succeed(SUMMARY)


def test_a_run_queues_starts_and_succeeds(repo):
    add(repo, KEY)

    row = loaded(repo, "r1")

    assert (row["last_status"], row["current_run_id"], row["incremental_value"]) == (
        "Succeeded",
        "r1",
        SUMMARY["watermark"],
    )
    assert history(repo, "r1") == ("Succeeded", 4, None)


def test_a_second_run_waits_while_the_first_is_live_and_goes_on_when_it_ends(repo):
    add(repo, KEY)
    life(repo, "r1").queue()

    with pytest.raises(RowBusy, match=r"run r2 waits for the row: it is Queued for run r1, which has not ended"):
        life(repo, "r2", {"r1": True}).queue()
    with pytest.raises(RowBusy):  # unknown liveness (a shell run): a held row is busy
        life(repo, "r2").queue()

    first = life(repo, "r1")
    first.start()
    first.succeed(SUMMARY)
    assert life(repo, "r2", {"r1": False}).queue()["current_run_id"] == "r2"
    assert [r["run_id"] for r in repo.runs(KEY)] == ["r1", "r2"]


def test_a_row_held_by_an_ended_run_is_taken_over_and_that_run_closed_failed(repo):
    add(repo, KEY)
    abandoned = life(repo, "r1")
    abandoned.queue()
    abandoned.start()  # its worker died; Airflow marked the run failed

    row = life(repo, "r2", {"r1": False}).queue()

    assert (row["last_status"], row["current_run_id"]) == ("Queued", "r2")
    status, _, error = history(repo, "r1")
    assert status == "Failed" and error.startswith("abandoned: the row said In Progress after run r1 had ended")


def test_clearing_a_successful_load_reruns_it_and_ends_succeeded_with_its_history_true(repo):
    add(repo, KEY)
    loaded(repo, "r1")

    again = life(repo, "r1")  # only `load` was cleared: its queue task does not run again
    assert again.start()["last_status"] == "In Progress"
    row = again.succeed({**SUMMARY, "inserted": 0, "updated": 4})

    assert (row["last_status"], row["current_run_id"]) == ("Succeeded", "r1")
    assert history(repo, "r1") == ("Succeeded", 4, None)
    assert len(repo.runs(KEY)) == 1


def test_clearing_an_old_runs_load_takes_the_row_back_once_the_newer_run_has_ended(repo):
    add(repo, KEY)
    loaded(repo, "r1")
    loaded(repo, "r2")

    old = life(repo, "r1", {"r2": False})
    old.start()
    old.succeed(SUMMARY)

    assert repo.get(KEY)["current_run_id"] == "r1"
    assert [history(repo, r)[0] for r in ("r1", "r2")] == ["Succeeded", "Succeeded"]


def test_a_cleared_queue_of_the_run_holding_the_row_changes_nothing(repo):
    add(repo, KEY)
    loaded(repo, "r1")

    row = life(repo, "r1").queue()

    assert (row["last_status"], history(repo, "r1")) == ("Succeeded", ("Succeeded", 4, None))


def test_an_inactive_row_is_not_taken(repo):
    add(repo, KEY, is_active=False)

    with pytest.raises(RowInactive, match=r"sales.orders is inactive .* --set is_active=true"):
        life(repo, "r1").queue()


def backfill_started(repo, run_id="b1"):
    add(repo, KEY, load_strategy="chunked_backfill")
    run = life(repo, run_id)
    run.queue()
    run.start_step("plan")
    run.step_succeeded("plan")
    return run


def test_a_failed_chunk_keeps_its_error_while_the_other_chunks_run_and_until_it_succeeds(repo):
    run = backfill_started(repo)
    run.start_step("load_chunk[0]")
    run.fail("ConnectionResetError: reset by peer\n  at line 3", step="load_chunk[0]")

    run.start_step("load_chunk[1]")  # the next chunk neither resumes the row nor clears the error
    run.step_succeeded("load_chunk[1]")
    row = repo.get(KEY)
    assert (row["last_status"], row["last_status_message"]) == (
        "Failed",
        "load_chunk[0]: ConnectionResetError: reset by peer | at line 3",
    )
    assert history(repo, "b1")[0] == "Failed"

    run.start_step("load_chunk[0]")  # cleared alone: the row stays Failed while it re-runs
    assert repo.get(KEY)["last_status"] == "Failed"
    run.step_succeeded("load_chunk[0]")
    row = repo.get(KEY)
    assert row["last_status"] == "Failed"
    assert "every failed step of run b1 has re-run since (load_chunk[0] last)" in row["last_status_message"]
    assert "clear finalize if it is upstream_failed" in row["last_status_message"]

    run.start()  # finalize claims the row
    done = run.succeed({**SUMMARY, "switch_to_strategy": "incremental"})
    assert (done["last_status"], done["last_status_message"], done["load_strategy"]) == (
        "Succeeded",
        None,
        "incremental",
    )
    assert history(repo, "b1") == ("Succeeded", 4, None)


def test_each_failed_chunk_keeps_its_own_error(repo):
    run = backfill_started(repo)
    run.fail("boom 0", step="load_chunk[0]")
    run.fail("boom 2", step="load_chunk[2]")
    assert step_errors(repo.get(KEY)["last_status_message"]) == {"load_chunk[0]": "boom 0", "load_chunk[2]": "boom 2"}

    run.step_succeeded("load_chunk[2]")

    assert repo.get(KEY)["last_status_message"] == "load_chunk[0]: boom 0"
    assert history(repo, "b1")[2] == "load_chunk[0]: boom 0"


def test_a_failed_backfill_run_holds_the_row_while_it_still_runs(repo):
    run = backfill_started(repo)
    run.fail("boom", step="load_chunk[0]")

    with pytest.raises(RowBusy, match="it is Failed for run b1"):
        life(repo, "next", {"b1": True}).queue()
    assert life(repo, "next", {"b1": False}).queue()["current_run_id"] == "next"


def test_a_chunk_rerun_alone_after_its_backfill_succeeded_restores_succeeded(repo):
    run = backfill_started(repo)
    run.start()
    run.succeed(SUMMARY)

    held = run.start_step("load_chunk[1]")
    assert (held["last_status"], held["last_status_message"]) == ("In Progress", "load_chunk[1]: re-running for run b1")
    with pytest.raises(RowBusy):
        life(repo, "other", {"b1": True}).queue()
    row = run.step_succeeded("load_chunk[1]")

    assert (row["last_status"], row["last_status_message"]) == ("Succeeded", "load_chunk[1] re-ran for run b1")
    assert history(repo, "b1") == ("Succeeded", 4, None)  # the run's recorded rows survive
