"""The verify task of a loader DAG (dag.test(), real PostgreSQL and Delta on Sail), and its Databricks SQL side."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import deltalake
import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.dags.conftest import ORDERS, tasks
from tests.dataloader.conftest import control_row


def test_verify_follows_the_load_only_when_the_row_asks_for_it(loader_env, loader_dag, repo):
    repo.add(control_row("plain", "incremental", **ORDERS))
    repo.add(control_row("checked", "incremental", **ORDERS, verify=True))
    repo.add(
        control_row(
            "backfilled",
            "chunked_backfill",
            **{**ORDERS, "incremental_column": "order_id", "incremental_type": "integer"},
            verify=True,
        )
    )
    assert "verify" not in loader_dag("test.plain").task_ids
    checked = loader_dag("test.checked")
    assert checked.get_task("verify").upstream_task_ids == {"load"}
    backfill = loader_dag("test.backfilled")
    assert backfill.get_task("verify").upstream_task_ids == {"finalize"}
    assert backfill.get_task("verify").strategy == "chunked_backfill"  # the row says incremental once it is done


def loaded_outside_airflow(repo, key: str) -> dict:
    """A first load of the row (the job on the local engine, its lifecycle recorded), as a shell run does."""
    from include.dataloader.engine import local_engine
    from include.dataloader.job import control_row as job_row
    from include.dataloader.job import execute

    row = repo.require(key)
    repo.queue(key, "cli__first")
    repo.start(key, "cli__first")
    summary = execute(local_engine(), job_row(row), repo.get_dbconfig(row["db_config_key"]))["summary"]
    return repo.succeed(key, "cli__first", rows_processed=summary["inserted"], watermark=summary["watermark"])


def test_a_drift_in_bronze_fails_verify_pages_the_alert_target_and_a_rerun_gives_the_same_result(
    airflow_db, loader_dag, loader_env, repo, orders, source_sql, webhook
):
    repo.add(control_row("orders", "incremental", **ORDERS, verify=True, alert_target=webhook.url))
    loaded_outside_airflow(repo, "test.orders")
    # order 2 (its cursor far below the watermark) disappears from bronze: no incremental load brings it back
    deltalake.DeltaTable(str(loader_env / "warehouse" / "bronze" / "test" / "orders")).delete("order_id = 2")
    source_sql("UPDATE orders SET status = 'paid', updated_at = timestamp '2024-01-05' WHERE order_id = 12")
    dag = loader_dag("test.orders")

    run = dag.test()

    assert run.state == "failed"
    assert tasks(run) == {("queue", -1): "success", ("load", -1): "success", ("verify", -1): "failed"}
    history = {r["run_id"]: r for r in repo.runs("test.orders")}[run.run_id]
    assert (history["load_status"], history["verify_status"]) == ("Succeeded", "mismatch")
    result = history["verify_result"]
    assert (result["source_rows"], result["target_rows"], result["matching"]) == (12, 11, 11)
    assert result["keys"]["missing_in_target"] == [[2]]
    assert (
        result["scope"]
        == "rows with updated_at <= 2024-01-05 00:00:00; rows with a NULL cursor left out (counted apart)"
    )
    verify_ti = next(ti for ti in run.get_task_instances() if ti.task_id == "verify")
    assert verify_ti.xcom_pull(task_ids="verify")["failures"] == 1  # the summary is in XCom on failure too
    [alert] = webhook.received
    assert alert["title"] == "test.orders: task verify failed (try 1)"
    assert "1 failing: 1 missing in bronze, 0 in bronze only, 0 different" in alert["detail"]

    # cleared: the task compares again, and the run's record is the same
    pushed = []
    with pytest.raises(AirflowFailException, match="1 missing in bronze"):
        dag.get_task("verify").execute(
            {"run_id": run.run_id, "ti": SimpleNamespace(xcom_push=lambda **kw: pushed.append(kw))}
        )
    again = {r["run_id"]: r for r in repo.runs("test.orders")}[run.run_id]
    assert len(repo.runs("test.orders")) == 2
    paths = ("report", "sync_sql")
    assert {k: v for k, v in again["verify_result"].items() if k not in paths} == {
        k: v for k, v in result.items() if k not in paths
    }
    assert pushed[0]["value"] == again["verify_result"]
    report = Path(again["verify_result"]["report"])
    assert sorted(p.name for p in report.parent.iterdir()) == sorted(  # the run's one report, replaced
        [report.name, Path(again["verify_result"]["sync_sql"]).name]
    )


class RecordingDatabricksSql:
    """A databricks-sql-connector connection stand-in: records every statement, and answers it from the local
    Delta table the Unity Catalog name stands for (so the answers are real)."""

    def __init__(self, spark, uc_name: str, delta_ref: str):
        self.spark, self.uc_name, self.delta_ref = spark, uc_name, delta_ref
        self.statements: list[tuple[str, dict]] = []

    def cursor(self):
        from include.sentinel.spark import SparkCursor

        outer, inner = self, SparkCursor(self.spark)

        class Cursor:
            def execute(self, sql, parameters=None):
                outer.statements.append((sql, dict(parameters or {})))
                inner.execute(sql.replace(outer.uc_name, outer.delta_ref), parameters)

            def fetchall(self):
                return inner.fetchall()

            def close(self):
                inner.close()

        return Cursor()

    def close(self):
        pass


def test_on_databricks_the_bronze_side_is_read_through_databricks_sql(
    airflow_db, loader_env, repo, control_connection, orders, spark, monkeypatch
):
    from dataplatform.operators.verify import VerifyLoadOperator

    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_DEFAULT",
        json.dumps({"conn_type": "databricks", "host": "adb-1.azuredatabricks.net", "password": "canary-dbx-token"}),
    )
    repo.add(control_row("orders", "incremental", **ORDERS, verify=True))
    loaded_outside_airflow(repo, "test.orders")
    delta_ref = f"delta.`{loader_env / 'warehouse' / 'bronze' / 'test' / 'orders'}`"
    sql = RecordingDatabricksSql(spark, "`bronze`.`test`.`orders`", delta_ref)
    from airflow.providers.databricks.hooks import databricks_sql

    opened = []
    monkeypatch.setattr(
        databricks_sql.sql, "connect", lambda host, path, token, **kw: opened.append((host, path, token)) or sql
    )

    task = VerifyLoadOperator(
        task_id="verify",
        control_key="test.orders",
        target="databricks",
        databricks_sql_http_path="/sql/1.0/warehouses/w1",
    )
    result = task.execute({"run_id": "cli__first", "ti": SimpleNamespace(xcom_push=lambda **kw: None)})

    assert (result["status"], result["matching"]) == ("equal", 12)
    assert set(opened) == {("adb-1.azuredatabricks.net", "/sql/1.0/warehouses/w1", "canary-dbx-token")}
    statements = [s for s, _ in sql.statements]
    # equal tables: the columns, then one checksum scan of the scope (no row is fetched); the table by its
    # Unity Catalog name, the watermark as Databricks SQL
    watermark = "`updated_at` <= CAST('2024-01-04 00:00:00' AS TIMESTAMP_NTZ)"
    assert len(statements) == 2 and statements[0] == "DESCRIBE TABLE `bronze`.`test`.`orders`"
    assert statements[1].startswith("SELECT COUNT(*), COALESCE(SUM(")
    assert statements[1].endswith(f"FROM `bronze`.`test`.`orders` WHERE (TRUE) AND ({watermark})")
