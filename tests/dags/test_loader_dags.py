"""Loader DAGs run with dag.test() against the real PostgreSQL and Sail (the local execution target)."""

from datetime import UTC, datetime

import pytest

from include.dataloader.strategies import chunked_backfill
from tests.dags.conftest import ORDERS, tasks
from tests.dataloader.conftest import control_row


def warehouse_rows(spark, loader_env, table):
    path = loader_env / "warehouse" / "bronze" / "test" / table
    return spark.read.format("delta").load(str(path)).count()


@pytest.mark.parametrize(
    ("strategy", "settings", "watermark"),
    [
        ("full", {}, None),
        ("incremental", {**ORDERS, "verify": True}, "2024-01-04 00:00:00"),
        ("append_only", {"incremental_column": "order_id", "incremental_type": "integer"}, "12"),
        (
            "rolling",
            {
                "primary_key_columns": ["order_id"],
                "rolling_column": "updated_at",
                "rolling_days": 100000,
                "verify": True,
            },
            None,
        ),
        ("check_and_load", ORDERS, "2024-01-04 00:00:00"),
        (
            "chunked_backfill",
            {
                **ORDERS,
                "incremental_column": "order_id",
                "incremental_type": "integer",
                "chunk_size": 5,
                "verify": True,  # after finalize, in the backfill's terms
            },
            "12",
        ),
    ],
)
def test_each_strategy_end_to_end(
    airflow_db, loader_dag, loader_env, repo, orders, spark, strategy, settings, watermark
):
    repo.add(control_row("orders", strategy, **settings))

    run = loader_dag("test.orders").test()

    assert run.state == "success", tasks(run)
    row = repo.get("test.orders")
    assert (row["last_status"], row["incremental_value"], row["rows_processed"]) == ("Succeeded", watermark, 12)
    assert row["airflow_run_url"].endswith(
        f"/dags/test.orders/runs/{run.run_id.replace(':', '%3A').replace('+', '%2B')}"
    )
    [history] = repo.runs("test.orders")
    assert (history["run_id"], history["load_status"], history["rows_processed"]) == (run.run_id, "Succeeded", 12)
    assert warehouse_rows(spark, loader_env, "orders") == 12
    if settings.get("verify"):
        assert tasks(run)[("verify", -1)] == "success"
        assert (history["verify_status"], history["verify_result"]["matching"]) == ("equal", 12)
    if strategy == "chunked_backfill":
        assert row["load_strategy"] == "incremental"
        assert [m for (t, m) in tasks(run) if t == "load_chunk"] == [0, 1, 2]


def test_a_failed_load_marks_the_row_and_the_run_failed(airflow_db, loader_dag, repo, orders, source_sql):
    repo.add(control_row("orders", "incremental", **ORDERS))
    dag = loader_dag("test.orders")
    source_sql("DROP TABLE orders")  # the injected failure

    run = dag.test()

    assert run.state == "failed"
    assert tasks(run) == {("queue", -1): "success", ("load", -1): "failed"}
    row = repo.get("test.orders")
    assert row["last_status"] == "Failed"
    assert "source table public.orders not found" in row["last_status_message"]
    [history] = repo.runs("test.orders")
    assert (history["load_status"], history["error_message"]) == ("Failed", row["last_status_message"])


def test_a_failed_chunk_is_retried_alone(airflow_db, loader_dag, repo, orders, monkeypatch):
    monkeypatch.setenv("DATALOADER_RETRIES", "1")
    monkeypatch.setenv("DATALOADER_RETRY_DELAY_SECONDS", "0")
    repo.add(
        control_row(
            "orders",
            "chunked_backfill",
            **{**ORDERS, "incremental_column": "order_id", "incremental_type": "integer", "chunk_size": 5},
        )
    )
    calls = []
    real = chunked_backfill.load_chunk

    def flaky(ctx, chunk):
        calls.append(chunk.index)
        if chunk.index == 1 and calls.count(1) == 1:
            raise ConnectionResetError("connection reset by peer (injected)")
        return real(ctx, chunk)

    monkeypatch.setattr(chunked_backfill, "load_chunk", flaky)

    run = loader_dag("test.orders").test()

    assert run.state == "success", tasks(run)
    assert sorted(calls) == [0, 1, 1, 2]  # only the failed chunk ran again
    row = repo.get("test.orders")
    assert (row["last_status"], row["load_strategy"], row["incremental_value"]) == ("Succeeded", "incremental", "12")


def test_reload_interval_merges_the_runs_interval_without_moving_the_watermark(
    airflow_db, loader_dag, repo, orders, source_sql, spark, loader_env
):
    repo.add(control_row("orders", "incremental", **ORDERS, cron="@daily"))
    dag = loader_dag("test.orders")
    assert dag.test().state == "success"
    # rows of 2024-01-02 corrected at the source without touching their cursor: invisible to incremental
    source_sql("UPDATE orders SET status = 'corrected' WHERE updated_at >= '2024-01-02' AND updated_at < '2024-01-03'")

    run = dag.test(logical_date=datetime(2024, 1, 3, tzinfo=UTC), run_conf={"reload_interval": True})

    assert run.state == "success", tasks(run)
    assert (run.data_interval_start, run.data_interval_end) == (
        datetime(2024, 1, 2, tzinfo=UTC),
        datetime(2024, 1, 3, tzinfo=UTC),
    )
    path = str(loader_env / "warehouse" / "bronze" / "test" / "orders")
    corrected = spark.read.format("delta").load(path).where("status = 'corrected'").count()
    assert corrected == 4  # the four rows stamped on 2024-01-02, and only them
    row = repo.get("test.orders")
    assert row["incremental_value"] == "2024-01-04 00:00:00"  # unchanged
    assert row["last_status_message"] == "reloaded [2024-01-02 00:00:00+00:00, 2024-01-03 00:00:00+00:00)"


def test_check_and_load_skips_when_nothing_changes_then_waits_deferred_for_a_change(
    airflow_db, loader_dag, loader_env, spark, repo, orders, source_sql, monkeypatch
):
    monkeypatch.setenv("DATALOADER_CHANGE_WAIT_MINUTES", "0.05")  # 3 seconds
    repo.add(control_row("orders", "check_and_load", **ORDERS))
    assert loader_dag("test.orders").test().state == "success"  # no watermark yet: loads everything
    before = repo.get("test.orders")
    assert before["watermark_rows"] == 1  # the target's rows at the watermark it committed

    quiet = loader_dag("test.orders").test()

    assert tasks(quiet) == {("wait_for_changes", -1): "skipped", ("queue", -1): "skipped", ("load", -1): "skipped"}
    after = repo.get("test.orders")
    assert (after["last_status"], after["current_run_id"]) == ("Succeeded", before["current_run_id"])  # never queued

    monkeypatch.setenv("DATALOADER_CHANGE_WAIT_MINUTES", "5")
    source_sql("INSERT INTO orders VALUES (13, 'new', '2024-02-01')")
    changed = loader_dag("test.orders").test()

    assert tasks(changed) == {("wait_for_changes", -1): "success", ("queue", -1): "success", ("load", -1): "success"}
    row = repo.get("test.orders")
    assert (row["incremental_value"], row["watermark_rows"]) == ("2024-02-01 00:00:00", 1)

    # a row committed later at exactly the watermark: the sensor counts as the load reads (>=)
    source_sql("INSERT INTO orders VALUES (14, 'late', '2024-02-01')")
    late = loader_dag("test.orders").test()

    assert tasks(late) == {("wait_for_changes", -1): "success", ("queue", -1): "success", ("load", -1): "success"}
    row = repo.get("test.orders")
    assert (row["incremental_value"], row["watermark_rows"]) == ("2024-02-01 00:00:00", 2)
    assert warehouse_rows(spark, loader_env, "orders") == 14


def test_manual_params_force_a_full_reload_or_override_the_watermark(airflow_db, loader_dag, repo, orders):
    repo.add(control_row("orders", "incremental", **ORDERS))
    # a fresh DAG per run, as the scheduler parses one: dag.test() keeps a run's conf in the DAG's params
    loader_dag("test.orders").test()

    loader_dag("test.orders").test(run_conf={"force_full_reload": True})
    assert repo.runs("test.orders")[-1]["rows_processed"] == 12

    loader_dag("test.orders").test(run_conf={"watermark_override": "2024-01-03 12:00:00"})
    assert repo.runs("test.orders")[-1]["rows_processed"] == 3  # 12:00, 18:00 and the next day's 00:00
    assert repo.get("test.orders")["incremental_value"] == "2024-01-04 00:00:00"


def test_a_malformed_row_gets_a_placeholder_dag_and_the_others_still_load(loader_env, repo, control_url):
    import psycopg

    from dataplatform.factories.loader import InvalidControlRowWarning, loader_dags
    from include.control import snapshot

    repo.add(control_row("good", "full"))
    repo.add(control_row("bad", "full"))
    repo.add(control_row("off", "full", is_active=False))
    with psycopg.connect(control_url) as conn:  # the database cannot check a cron; SQL by hand can break it
        conn.execute("UPDATE table_control SET cron = 'every hour' WHERE control_key = 'test.bad'")
    snapshot.write(snapshot.default_path(), repo.list())

    with pytest.warns(InvalidControlRowWarning, match=r"(?s)'test.bad' skipped: .*cron: 'every hour' is not a valid"):
        dags = loader_dags(snapshot.read(snapshot.default_path()).rows)

    assert sorted(dags) == ["dataloader_invalid__test.bad", "test.good"]  # test.off: deactivated, no DAG
    placeholder = dags["dataloader_invalid__test.bad"]
    assert "invalid-config" in placeholder.tags
    assert "cron: 'every hour' is not a valid cron expression" in placeholder.doc_md


def test_the_dag_file_parses_the_snapshot_with_zero_import_errors(loader_env, repo, control_url):
    import psycopg
    from airflow.dag_processing.dagbag import DagBag

    from include.control import snapshot
    from tests.dags.test_dag_integrity import DAGS

    for strategy in ("full", "incremental", "check_and_load", "chunked_backfill"):
        repo.add(control_row(f"t_{strategy}", strategy, **(ORDERS if strategy != "full" else {})))
    with psycopg.connect(control_url) as conn:
        conn.execute("UPDATE table_control SET cron = '99 * * * *' WHERE control_key = 'test.t_full'")
    snapshot.write(snapshot.default_path(), repo.list())

    bag = DagBag(dag_folder=str(DAGS / "dataloader_tables.py"))

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [
        "dataloader_invalid__test.t_full",
        "test.t_check_and_load",
        "test.t_chunked_backfill",
        "test.t_incremental",
    ]
    dag = bag.dags["test.t_incremental"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert set(dag.tags) == {"dataloader", "source:postgresql", "strategy:incremental", "target:local"}
    assert [w for w in bag.captured_warnings.values()]  # the bad row is in the parse warnings


def test_a_thousand_control_rows_parse_without_errors(loader_env):
    from airflow.dag_processing.dagbag import DagBag

    from include.control import snapshot
    from tests.dags.test_dag_integrity import DAGS

    strategies = {
        "full": {},
        "incremental": ORDERS,
        "append_only": {"incremental_column": "id", "incremental_type": "integer"},
    }
    rows = [
        control_row(f"t{i:04d}", strategy, **settings).as_columns() | {"db_type": "oracle"}
        for i in range(1000)
        for strategy, settings in [list(strategies.items())[i % 3]]
    ]
    snapshot.write(snapshot.default_path(), rows)

    bag = DagBag(dag_folder=str(DAGS / "dataloader_tables.py"))

    assert bag.import_errors == {}
    assert len(bag.dags) == 1000
