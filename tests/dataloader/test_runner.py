"""A load with its lifecycle in the control database: runner, CLI `dataloader run`, and the job process."""

import json
import os
import subprocess
import sys

import pytest

from include.dataloader import runner
from include.dataloader.cli import main
from include.dataloader.engine import Engine
from include.dataloader.readers import local_reader
from include.dataloader.target import LocalWarehouse


@pytest.fixture
def engine(spark, tmp_path):
    return Engine(
        spark=spark,
        warehouse=LocalWarehouse(spark, tmp_path / "warehouse"),
        reader_for=lambda dialect, params: local_reader(spark, dialect, params),
    )


@pytest.fixture
def configured(repo, source_url, source_sql, monkeypatch):
    """The control row of an incremental orders table on the test source (secret: an env variable)."""
    monkeypatch.setenv("TEST_SOURCE_URL", source_url)
    repo.upsert_dbconfig("test_source", "postgresql", {"url": "TEST_SOURCE_URL"}, "env")
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, status text, updated_at timestamp)")
    source_sql("INSERT INTO orders VALUES (1, 'new', '2024-01-01 10:00'), (2, 'new', '2024-01-02 11:00')")
    from tests.dataloader.conftest import control_row

    repo.add(
        control_row(
            "orders",
            "incremental",
            incremental_column="updated_at",
            incremental_type="timestamp",
            primary_key_columns=["order_id"],
        )
    )
    return "test.orders"


def test_a_successful_load_records_status_watermark_and_run(repo, engine, configured):
    summary = runner.run(repo, configured, "run-1", engine, airflow_run_url="http://airflow/run-1")

    assert summary["inserted"] == 2
    row = repo.get(configured)
    assert (row["last_status"], row["incremental_value"], row["rows_processed"]) == (
        "Succeeded",
        "2024-01-02 11:00:00",
        2,
    )
    assert row["airflow_run_url"] == "http://airflow/run-1"
    [run] = repo.runs(configured)
    assert (run["run_id"], run["load_status"], run["rows_processed"]) == ("run-1", "Succeeded", 2)
    assert run["load_start_time"] <= run["load_end_time"]


def test_the_next_run_starts_from_the_stored_watermark(repo, engine, configured, source_sql):
    runner.run(repo, configured, "run-1", engine)
    source_sql("INSERT INTO orders VALUES (3, 'new', '2024-01-03 09:00')")

    summary = runner.run(repo, configured, "run-2", engine)

    assert (summary["rows_read"], summary["inserted"], summary["updated"]) == (2, 1, 1)
    assert repo.get(configured)["incremental_value"] == "2024-01-03 09:00:00"


def test_a_failed_load_records_the_error_and_reraises(repo, engine, configured, source_sql):
    source_sql("DROP TABLE orders")

    with pytest.raises(Exception, match=r"source table public\.orders not found"):
        runner.run(repo, configured, "run-1", engine)

    row = repo.get(configured)
    assert row["last_status"] == "Failed"
    assert "SourceTableNotFound: test.orders: source table public.orders not found" in row["last_status_message"]
    [run] = repo.runs(configured)
    assert run["load_status"] == "Failed"
    assert run["error_message"] == row["last_status_message"]


def test_no_password_reaches_the_control_table(repo, engine, configured, monkeypatch):
    monkeypatch.setenv("TEST_SOURCE_URL", "postgresql://loader:canary-hunter2@127.0.0.1:9/nowhere")
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        runner.run(repo, configured, "run-1", engine)
    message = repo.get(configured)["last_status_message"]
    assert message and "canary-hunter2" not in message


def test_a_row_already_running_is_refused(repo, engine, configured):
    repo.queue(configured, "other-run")
    with pytest.raises(
        runner.LoadRefused, match=r"test.orders was not queued: .* it is Queued for run other-run, which has not ended"
    ):
        runner.run(repo, configured, "run-1", engine)


def test_a_finished_backfill_switches_the_row_to_incremental(repo, engine, configured):
    repo.update(
        configured,
        {
            "load_strategy": "chunked_backfill",
            "incremental_column": "order_id",
            "incremental_type": "integer",
            "chunk_size": 1,
        },
    )
    summary = runner.run(repo, configured, "run-1", engine)

    assert summary["message"] == "backfill complete: 2 chunks, 2 rows"
    row = repo.get(configured)
    assert (row["load_strategy"], row["incremental_value"], row["last_status"]) == ("incremental", "2", "Succeeded")


def test_cli_run_prints_the_summary(repo, configured, control_url, tmp_path, capsys):
    assert main(["--db-url", control_url, "run", configured, "--run-id", "cli-1", "--warehouse", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["control_key"], summary["inserted"]) == (configured, 2)
    assert repo.get(configured)["current_run_id"] == "cli-1"


def test_the_job_process_prints_exactly_one_json_line(source_url, source_sql, tmp_path):
    source_sql("CREATE TABLE events (event_id int PRIMARY KEY, kind text)")
    source_sql("INSERT INTO events VALUES (1, 'a'), (2, 'b')")
    row = {
        "control_key": "test.events",
        "db_config_key": "test_source",
        "source_schema": "public",
        "source_table_name": "events",
        "destination_schema": "test",
        "destination_table_name": "events",
        "load_strategy": "append_only",
        "cron": "@daily",
        "incremental_column": "event_id",
        "incremental_type": "integer",
        "last_status": "Queued",  # status columns are ignored
    }
    dbconfig = {
        "db_config_key": "test_source",
        "db_type": "postgresql",
        "db_config_value": {"url": "SRC"},
        "db_kv_scope": "env",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.dataloader.job",
            "--engine",
            "local",
            "--row",
            json.dumps(row),
            "--dbconfig",
            json.dumps(dbconfig),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "SRC": source_url, "DATALOADER_WAREHOUSE": str(tmp_path)},
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])["summary"]
    assert (summary["inserted"], summary["watermark"], summary["strategy"]) == (2, "2", "append_only")
    assert "password" not in done.stderr.lower()
