from datetime import datetime, timedelta

import pytest

from include.control.repository import MAX_MESSAGE_CHARS
from tests.control.helpers import add, execute, make_due


def _run(repo, key):
    [run] = [r for r in repo.runs(key)][-1:]
    return run


def _running(repo, key="sales.orders", run_id="run-1", **overrides):
    add(repo, key, **overrides)
    assert repo.queue(key, run_id)
    assert repo.start(key, run_id, airflow_run_url=f"http://airflow/runs/{run_id}")


# -- ready ----------------------------------------------------------------------------------------


def test_ready_lists_active_due_rows_that_are_not_queued_or_running(repo, control_url):
    for key in ("due", "not-due", "inactive", "queued", "running", "failed", "succeeded"):
        add(repo, key)
    for key in ("due", "inactive", "queued", "running", "failed", "succeeded"):
        make_due(control_url, key)
    repo.update("inactive", {"is_active": False})
    execute(control_url, "UPDATE table_control SET last_status = 'Queued' WHERE control_key = 'queued'")
    execute(control_url, "UPDATE table_control SET last_status = 'In Progress' WHERE control_key = 'running'")
    execute(control_url, "UPDATE table_control SET last_status = 'Failed' WHERE control_key = 'failed'")
    execute(control_url, "UPDATE table_control SET last_status = 'Succeeded' WHERE control_key = 'succeeded'")

    assert [r["control_key"] for r in repo.ready()] == ["due", "failed", "succeeded"]
    assert len(repo.ready(limit=2)) == 2


# -- queue / start ----------------------------------------------------------------------------------


def test_queue_sets_the_status_and_opens_a_run(repo):
    add(repo)
    queued = repo.queue("sales.orders", "run-1")

    assert queued["last_status"] == "Queued"
    assert queued["current_run_id"] == "run-1"
    run = _run(repo, "sales.orders")
    assert (run["run_id"], run["load_status"]) == ("run-1", "Queued")
    assert run["load_queued_time"] is not None


def test_queue_refuses_a_row_already_queued_running_or_inactive(repo):
    add(repo)
    assert repo.queue("sales.orders", "run-1")
    assert repo.queue("sales.orders", "run-2") is None
    repo.start("sales.orders", "run-1")
    assert repo.queue("sales.orders", "run-2") is None

    add(repo, "off", is_active=False)
    assert repo.queue("off", "run-3") is None
    assert [r["run_id"] for r in repo.runs()] == ["run-1"]


def test_queue_due_only_waits_for_the_next_load_time(repo, control_url):
    add(repo)
    assert repo.queue("sales.orders", "run-1", due_only=True) is None
    make_due(control_url, "sales.orders")
    assert repo.queue("sales.orders", "run-1", due_only=True)


def test_requeueing_the_same_run_resets_its_history_row(repo):
    _running(repo)
    repo.fail("sales.orders", "run-1", "boom")
    assert repo.queue("sales.orders", "run-1")

    [run] = repo.runs("sales.orders")
    assert (run["load_status"], run["error_message"], run["load_start_time"]) == ("Queued", None, None)


def test_start_needs_the_queued_run(repo):
    add(repo)
    assert repo.start("sales.orders", "run-1") is None  # not queued
    repo.queue("sales.orders", "run-1")
    assert repo.start("sales.orders", "someone-else") is None

    started = repo.start("sales.orders", "run-1", airflow_run_url="http://airflow/run-1")
    assert started["last_status"] == "In Progress"
    assert started["last_load_date_time"] is not None
    assert started["airflow_run_url"] == "http://airflow/run-1"
    assert _run(repo, "sales.orders")["load_status"] == "In Progress"
    assert repo.start("sales.orders", "run-1") is None  # already started


# -- succeed --------------------------------------------------------------------------------------


def test_succeed_records_rows_watermark_and_next_load(repo):
    _running(repo)
    before = datetime.now().astimezone()
    done = repo.succeed("sales.orders", "run-1", rows_processed=42, watermark="2024-01-20 14:45:30.123456")

    assert done["last_status"] == "Succeeded"
    assert done["rows_processed"] == 42
    assert done["incremental_value"] == "2024-01-20 14:45:30.123456"
    assert before < done["next_load_date_time"] <= before + timedelta(hours=1)
    run = _run(repo, "sales.orders")
    assert (run["load_status"], run["rows_processed"]) == ("Succeeded", 42)
    assert run["load_end_time"] >= run["load_start_time"]


@pytest.mark.parametrize(
    ("cursor_type", "stored", "offered", "expected"),
    [
        ("timestamp", "2024-01-20 14:45:30", "2024-01-19 00:00:00", "2024-01-20 14:45:30"),
        ("timestamp", "2024-01-20 14:45:30", "2024-01-20 14:45:30.000001", "2024-01-20 14:45:30.000001"),
        ("integer", "900", "1000", "1000"),
        ("integer", "1000", "900", "1000"),  # a text comparison would get this one wrong
        ("date", "2024-01-20", "2024-01-19", "2024-01-20"),
        ("integer", "1000", None, "1000"),  # nothing new read: the watermark stays
    ],
)
def test_the_watermark_never_moves_backwards(repo, cursor_type, stored, offered, expected):
    _running(repo, incremental_type=cursor_type, incremental_value=stored)
    done = repo.succeed("sales.orders", "run-1", rows_processed=0, watermark=offered)
    assert done["incremental_value"] == expected


def test_succeed_stores_the_target_rows_at_the_watermark_it_commits(repo):
    _running(repo, incremental_type="integer", incremental_value="900")
    done = repo.succeed("sales.orders", "run-1", rows_processed=3, watermark="1000", watermark_rows=2)
    assert (done["incremental_value"], done["watermark_rows"]) == ("1000", 2)

    # the same watermark again, with another count (a late row at it was loaded): the count follows
    assert repo.queue("sales.orders", "run-2") and repo.start("sales.orders", "run-2")
    done = repo.succeed("sales.orders", "run-2", rows_processed=1, watermark="1000", watermark_rows=3)
    assert (done["incremental_value"], done["watermark_rows"]) == ("1000", 3)

    # a run without a watermark (a backfill's interval), or behind it, leaves the count of the kept one
    for run_id, offered in (("run-3", None), ("run-4", "950")):
        assert repo.queue("sales.orders", run_id) and repo.start("sales.orders", run_id)
        done = repo.succeed("sales.orders", run_id, rows_processed=1, watermark=offered, watermark_rows=7)
        assert (done["incremental_value"], done["watermark_rows"]) == ("1000", 3)

    # a new watermark whose count is not known: NULL, not the old watermark's count
    assert repo.queue("sales.orders", "run-5") and repo.start("sales.orders", "run-5")
    done = repo.succeed("sales.orders", "run-5", rows_processed=1, watermark="1100")
    assert (done["incremental_value"], done["watermark_rows"]) == ("1100", None)


def test_a_watermark_set_by_hand_forgets_the_count_of_the_old_one(repo):
    _running(repo, incremental_type="integer", incremental_value="900")
    repo.succeed("sales.orders", "run-1", rows_processed=3, watermark="1000", watermark_rows=2)
    assert repo.update("sales.orders", {"cron": "0 * * * *"})["watermark_rows"] == 2
    assert repo.update("sales.orders", {"incremental_value": "500"})["watermark_rows"] is None


def test_succeed_restores_the_retry_budget(repo, control_url):
    _running(repo)
    execute(control_url, "UPDATE table_control SET retry_count = 2")
    assert repo.succeed("sales.orders", "run-1", rows_processed=1, watermark=None)["retry_count"] == 0


def test_succeed_refuses_a_stale_run(repo):
    _running(repo)
    repo.cancel("sales.orders", "run-1", "Cancelled - exceeded timeout")
    assert repo.succeed("sales.orders", "run-1", rows_processed=5, watermark="2030-01-01 00:00:00") is None
    row = repo.get("sales.orders")
    assert (row["last_status"], row["incremental_value"]) == ("Failed", None)


# -- fail / retry / cancel --------------------------------------------------------------------------


def test_fail_records_the_message_on_the_row_and_the_run(repo):
    _running(repo)
    failed = repo.fail("sales.orders", "run-1", "ORA-12170: TNS:Connect timeout occurred")

    assert failed["last_status"] == "Failed"
    assert failed["last_status_message"] == "ORA-12170: TNS:Connect timeout occurred"
    run = _run(repo, "sales.orders")
    assert (run["load_status"], run["error_message"]) == ("Failed", "ORA-12170: TNS:Connect timeout occurred")
    assert repo.fail("sales.orders", "run-1", "again") is None  # already failed


def test_fail_works_from_queued_and_clips_huge_messages(repo):
    add(repo)
    repo.queue("sales.orders", "run-1")
    failed = repo.fail("sales.orders", "run-1", "x" * (MAX_MESSAGE_CHARS + 500))
    assert failed["last_status"] == "Failed"
    assert failed["last_status_message"].endswith("[500 more characters]")


def test_fail_refuses_another_runs_row(repo):
    _running(repo)
    assert repo.fail("sales.orders", "run-0", "late failure of an older run") is None
    assert repo.get("sales.orders")["last_status"] == "In Progress"


def test_reset_for_retry_clears_the_status_while_retries_remain(repo, control_url):
    _running(repo)
    repo.fail("sales.orders", "run-1", "connection reset")

    retried = repo.reset_for_retry("sales.orders", note="[AI: Retry Recommended]", max_retries=2)
    assert retried["last_status"] is None
    assert retried["retry_count"] == 1
    assert retried["last_status_message"] == "[AI: Retry Recommended] connection reset"
    assert [r["control_key"] for r in repo.ready()] == ["sales.orders"]

    assert repo.reset_for_retry("sales.orders", note="n") is None  # not Failed any more
    execute(control_url, "UPDATE table_control SET last_status = 'Failed', retry_count = 2")
    assert repo.reset_for_retry("sales.orders", note="n", max_retries=2) is None  # budget spent


def test_cancel_stuck_ages_queued_rows_from_queueing(repo, control_url):
    add(repo, "old")
    add(repo, "young")
    repo.queue("old", "run-old")
    repo.queue("young", "run-young")
    execute(
        control_url,
        "UPDATE table_control SET last_status_date_time = now() - interval '61 minutes' WHERE control_key = 'old'",
    )

    cancelled = repo.cancel_stuck("Queued", timedelta(minutes=60), "Cancelled - stuck in queue")

    assert [r["control_key"] for r in cancelled] == ["old"]
    assert repo.get("old")["last_status"] == "Failed"
    assert repo.get("old")["last_status_message"] == "Cancelled - stuck in queue"
    assert repo.get("young")["last_status"] == "Queued"
    assert _run(repo, "old")["load_status"] == "Cancelled"


def test_cancel_stuck_ages_running_rows_from_the_load_start(repo, control_url):
    _running(repo, "long")
    _running(repo, "short", run_id="run-2")
    # a recent status change must not hide a load that started long ago
    execute(
        control_url,
        "UPDATE table_control SET last_load_date_time = now() - interval '181 minutes', "
        "last_status_date_time = now() WHERE control_key = 'long'",
    )

    cancelled = repo.cancel_stuck("In Progress", timedelta(minutes=180), "Cancelled - exceeded timeout")

    assert [r["control_key"] for r in cancelled] == ["long"]
    assert cancelled[0]["airflow_run_url"] == "http://airflow/runs/run-1"
    assert _run(repo, "long")["error_message"] == "Cancelled - exceeded timeout"
    assert repo.get("short")["last_status"] == "In Progress"


def test_databricks_run_url_is_stored_only_for_the_running_run(repo):
    _running(repo)
    assert repo.set_databricks_run_url("sales.orders", "other", "https://dbx/run/1") is None
    assert repo.set_databricks_run_url("sales.orders", "run-1", "https://dbx/run/2")["databricks_run_url"] == (
        "https://dbx/run/2"
    )
