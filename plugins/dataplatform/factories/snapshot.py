"""The DAG that keeps the control snapshot fresh for the loader DAG files."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from include.control import snapshot

DAG_ID = "dataloader_control_snapshot"


def build_snapshot_dag(*, conn_id: str = "dataloader_control") -> DAG:
    with DAG(
        dag_id=DAG_ID,
        schedule="* * * * *",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,  # no loader DAG exists until it has run once
        tags=["dataloader", "control"],
        default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(seconds=30)},
        doc_md="Writes the control rows to the snapshot file that the loader DAG files read at parse time.",
    ) as dag:

        @task(execution_timeout=timedelta(minutes=2))
        def write_snapshot() -> dict:
            from dataplatform.hooks.control import ControlDatabaseHook

            rows = ControlDatabaseHook(conn_id).repository().list()
            path = snapshot.write(snapshot.default_path(), rows)
            return {"path": str(path), "rows": len(rows), "active": sum(bool(r["is_active"]) for r in rows)}

        write_snapshot()
    return dag
