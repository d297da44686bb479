"""Loader DAGs under re-execution, with dag.test() against the real PostgreSQL and Sail.

dag.test() runs one run at a time: what the scheduler does with several runs at once (a backfill's runs
waiting for each other) is for the real-Airflow tier; here each run's claim, wait and re-run is shown.
"""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from dataplatform.operators import load as load_operators
from dataplatform.operators.load import LoadTableOperator
from include.dataloader.strategies import chunked_backfill
from tests.dags.conftest import ORDERS, tasks
from tests.dataloader.conftest import control_row

DAY = datetime(2024, 1, 3, tzinfo=UTC)
CHUNKED = {**ORDERS, "incremental_column": "order_id", "incremental_type": "integer", "chunk_size": 5}


@pytest.fixture
def fast_claims(monkeypatch):
    monkeypatch.setenv("DATALOADER_CLAIM_POLL_SECONDS", "0.5")


def test_a_run_waits_deferred_while_another_run_holds_the_row_then_loads(
    airflow_db, loader_dag, repo, orders, fast_claims, monkeypatch
):
    repo.add(control_row("orders", "incremental", **ORDERS))
    repo.queue("test.orders", "cli__shell-run")  # a `dataloader run` from a shell holds the row
    waits = []
    real_wait = load_operators.LoadLifecycle.wait_for_row

    def wait_then_release(self, context, busy):
        waits.append(str(busy))
        repo.fail("test.orders", "cli__shell-run", "the shell run ended")  # it ends while this run waits
        real_wait(self, context, busy)

    monkeypatch.setattr(load_operators.LoadLifecycle, "wait_for_row", wait_then_release)

    run = loader_dag("test.orders").test()

    assert run.state == "success", tasks(run)
    assert tasks(run) == {("queue", -1): "success", ("load", -1): "success"}  # waited, not skipped
    assert len(waits) == 1 and "it is Queued for run cli__shell-run, which has not ended" in waits[0]
    assert [(r["run_id"], r["load_status"]) for r in repo.runs("test.orders")] == [
        ("cli__shell-run", "Failed"),
        (run.run_id, "Succeeded"),
    ]


def test_a_successful_run_run_again_ends_succeeded_with_one_true_history_row(airflow_db, loader_dag, repo, orders):
    repo.add(control_row("orders", "incremental", **ORDERS))
    first = loader_dag("test.orders").test(run_after=DAY, logical_date=DAY)

    again = loader_dag("test.orders").test(run_after=DAY, logical_date=DAY)  # the same run id: every task cleared

    assert (first.run_id, first.state, again.state) == (again.run_id, "success", "success")
    row = repo.get("test.orders")
    assert (row["last_status"], row["current_run_id"]) == ("Succeeded", again.run_id)
    [history] = repo.runs("test.orders")  # rewritten by the second load: what it merged, no error
    assert (history["load_status"], history["rows_processed"], history["error_message"]) == (
        "Succeeded",
        row["rows_processed"],
        None,
    )
    # dag.test() triggers as "dag_test": the run's changes to the row name the user who triggered it
    runs = ("Queued", "In Progress", "Succeeded")
    sources = {h["change_source"] for h in repo.history("test.orders") if h["new_values"].get("last_status") in runs}
    assert sources == {"airflow:dag_test"}


def test_a_row_left_in_progress_by_an_ended_run_is_taken_over_by_the_next(
    airflow_db, loader_dag, repo, orders, control_url
):
    from tests.control.helpers import execute

    repo.add(control_row("orders", "incremental", **ORDERS))
    crashed = loader_dag("test.orders").test(run_after=DAY, logical_date=DAY)
    # as if its worker had died mid-load: the row still says In Progress, its Airflow run has ended
    execute(control_url, "UPDATE table_control SET last_status = 'In Progress' WHERE control_key = 'test.orders'")
    execute(control_url, "UPDATE historical_metadata SET load_status = 'In Progress'")

    run = loader_dag("test.orders").test()  # Airflow (the task SDK) says the holder's run is not live

    assert run.state == "success", tasks(run)
    assert repo.get("test.orders")["current_run_id"] == run.run_id
    first, second = repo.runs("test.orders")
    assert (first["run_id"], first["load_status"]) == (crashed.run_id, "Failed")
    assert first["error_message"].startswith(
        f"abandoned: the row said In Progress after run {crashed.run_id} had ended"
    )
    assert second["load_status"] == "Succeeded"


def test_a_failed_chunk_keeps_its_error_after_the_later_chunks_ran(airflow_db, loader_dag, repo, orders, monkeypatch):
    repo.add(control_row("orders", "chunked_backfill", **CHUNKED))
    real = chunked_backfill.load_chunk

    def broken_second_chunk(ctx, chunk):
        if chunk.index == 1:
            raise ConnectionResetError("connection reset by peer (injected)")
        return real(ctx, chunk)

    monkeypatch.setattr(chunked_backfill, "load_chunk", broken_second_chunk)
    dag = loader_dag("test.orders")

    run = dag.test(run_after=DAY, logical_date=DAY)

    assert run.state == "failed"
    states = tasks(run)
    assert (states[("load_chunk", 1)], states[("load_chunk", 2)], states[("finalize", -1)]) == (
        "failed",
        "success",
        "upstream_failed",
    )
    row = repo.get("test.orders")
    assert row["last_status"] == "Failed"
    assert row["last_status_message"].startswith("load_chunk[1]: ConnectionResetError: connection reset by peer")
    [history] = repo.runs("test.orders")
    assert (history["load_status"], history["error_message"]) == ("Failed", row["last_status_message"])

    monkeypatch.setattr(chunked_backfill, "load_chunk", real)  # the cause is fixed
    ctx = task_context(run)
    chunk = {"index": 1, "count": 3, "lower": 6, "upper": 11}  # the plan's second chunk: 6 <= order_id < 11

    # the failed chunk cleared alone: it re-runs, its error leaves the row, finalize still has to run
    LoadTableOperator(task_id="load_chunk", control_key="test.orders", action="chunk", chunk=chunk).execute(ctx)
    row = repo.get("test.orders")
    assert row["last_status"] == "Failed"
    assert "the row stays Failed until finalize of run" in row["last_status_message"]

    LoadTableOperator(task_id="finalize", control_key="test.orders", action="finalize").execute(ctx)  # cleared
    row = repo.get("test.orders")
    assert (row["last_status"], row["last_status_message"], row["load_strategy"]) == (
        "Succeeded",
        "backfill complete: 12 rows",
        "incremental",
    )
    [history] = repo.runs("test.orders")
    assert (history["load_status"], history["rows_processed"], history["error_message"]) == ("Succeeded", 12, None)


def task_context(run):
    """What a task of ``run`` gets when it is cleared and runs again (no other run is live)."""
    return {
        "run_id": run.run_id,
        "dag": SimpleNamespace(dag_id=run.dag_id),
        "params": {},
        "dag_run": SimpleNamespace(run_type="manual"),
        "ti": SimpleNamespace(get_dagrun_state=lambda dag_id, run_id: "success"),
    }


def test_clearing_only_the_load_of_a_successful_run_reruns_it_and_ends_succeeded(
    airflow_db, loader_dag, repo, orders, source_sql
):
    repo.add(control_row("orders", "incremental", **ORDERS))
    run = loader_dag("test.orders").test(run_after=DAY, logical_date=DAY)
    source_sql("INSERT INTO orders VALUES (13, 'new', '2024-02-01')")

    summary = LoadTableOperator(task_id="load", control_key="test.orders").execute(task_context(run))

    assert summary["inserted"] == 1
    row = repo.get("test.orders")
    assert (row["last_status"], row["current_run_id"], row["incremental_value"]) == (
        "Succeeded",
        run.run_id,
        "2024-02-01 00:00:00",
    )
    [history] = repo.runs("test.orders")
    assert (history["load_status"], history["rows_processed"], history["error_message"]) == ("Succeeded", 2, None)


def test_an_interval_reload_of_an_integer_cursor_table_is_refused_in_queue(airflow_db, loader_dag, repo, orders):
    repo.add(control_row("orders", "append_only", incremental_column="order_id", incremental_type="integer"))
    before = repo.get("test.orders")

    run = loader_dag("test.orders").test(run_after=DAY, logical_date=DAY, run_conf={"reload_interval": True})

    assert run.state == "failed"
    assert tasks(run) == {("queue", -1): "failed", ("load", -1): "upstream_failed"}
    after = repo.get("test.orders")
    assert (after["last_status"], after["current_run_id"]) == (before["last_status"], before["current_run_id"])
    assert repo.runs("test.orders") == []


def test_a_load_in_airflow_reads_its_source_from_the_airflow_connection_alone(
    airflow_db, loader_dag, repo, orders, monkeypatch
):
    repo.add(control_row("orders", "full"))
    monkeypatch.delenv("TEST_SOURCE_URL")  # the dbconfig's env secret is gone; AIRFLOW_CONN_TEST_SOURCE is set

    run = loader_dag("test.orders").test()

    assert run.state == "success", tasks(run)
    assert repo.get("test.orders")["rows_processed"] == 12


def test_every_writing_task_claims_with_the_configured_wait(loader_dag, repo, monkeypatch):
    monkeypatch.setenv("DATALOADER_CLAIM_POLL_SECONDS", "15")
    monkeypatch.setenv("DATALOADER_CLAIM_WAIT_MINUTES", "90")
    repo.add(control_row("orders", "chunked_backfill", **CHUNKED))

    dag = loader_dag("test.orders")

    for task_id in ("queue", "plan", "finalize"):
        task = dag.get_task(task_id)
        assert (task.claim_poll_seconds, task.claim_timeout.total_seconds()) == (15.0, 5400.0), task_id
    assert dag.get_task("load_chunk").partial_kwargs["claim_poll_seconds"] == 15.0


def test_an_operators_refused_reload_fails_with_the_fix_and_pages_nobody(
    airflow_db, loader_dag, repo, orders, webhook, monkeypatch
):
    from dataplatform.notifications.callbacks import TaskFailureAlert

    seen = []
    notify = TaskFailureAlert.notify
    monkeypatch.setattr(
        TaskFailureAlert, "notify", lambda self, context: (seen.append(context["exception"]), notify(self, context))
    )
    integer = {**ORDERS, "incremental_column": "order_id", "incremental_type": "integer"}
    repo.add(control_row("orders", "incremental", **integer, alert_target=webhook.url))

    run = loader_dag("test.orders").test(run_conf={"reload_interval": True})

    assert run.state == "failed" and tasks(run)[("queue", -1)] == "failed"
    [refusal] = seen  # the failure callback ran, with the refusal and its fix
    assert "would reload its data interval" in str(refusal) and "integer" in str(refusal)
    assert webhook.received == []  # the operator's own request: the task says why, on-call is not paged
    row = repo.get("test.orders")
    assert (row["last_status"], row["incremental_value"]) == (None, None)  # refused before the row was touched
    assert repo.runs("test.orders") == []
