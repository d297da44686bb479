"""The monitor DAGs around the loads: stuck in queue, running too long, failed (retry analysis), landed
tables (staging models in git) and the reconciler. Each is one task over the control database; the logic
lives in ``include/dataloader/monitors``."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, task

START_DATE = datetime(2024, 1, 1, tzinfo=UTC)


def _minutes(name: str, default: float) -> timedelta:
    return timedelta(minutes=float(os.environ.get(name, default)))


def _repo():
    from dataplatform.hooks.control import ControlDatabaseHook

    return ControlDatabaseHook().repository(change_source="airflow:monitor")


def _airflow():
    from dataplatform.hooks.airflow_api import AirflowApiHook

    return AirflowApiHook()


def _databricks():
    """Databricks' Jobs API, when the environment has a Databricks connection."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(os.environ.get("DATALOADER_DATABRICKS_CONN_ID", "databricks_default"))
    except Exception:
        return None
    return DatabricksHook(os.environ.get("DATALOADER_DATABRICKS_CONN_ID", "databricks_default"))


def _analyzer():
    """The LLM analyzer when the connection ``dataloader_llm`` exists (host: the OpenAI-compatible base URL,
    password: the API key, extra ``{"model": ...}``), else the rules."""
    from airflow.sdk import BaseHook

    from include.dataloader.monitors.analysis import LlmAnalyzer, RuleAnalyzer

    try:
        conn = BaseHook.get_connection("dataloader_llm")
    except Exception:
        return RuleAnalyzer()
    return LlmAnalyzer(base_url=conn.host, api_key=conn.password, model=conn.extra_dejson.get("model", "gpt-4o-mini"))


def _columns_of(row):
    """The landed table's columns: from the local warehouse, or Unity Catalog through Databricks SQL."""
    from include.dataloader.target import TableName

    name = TableName(row["destination_catalog"], row["destination_schema"], row["destination_table_name"])
    target = row["execution_target"] or os.environ.get("DATALOADER_EXECUTION_TARGET", "local")
    if target == "databricks":
        from airflow.providers.databricks.hooks.databricks_sql import DatabricksSqlHook

        described = DatabricksSqlHook().get_records(f"DESCRIBE TABLE {name}")
        return [(r[0], r[1]) for r in described if r[0] and not r[0].startswith("#")]
    from include.dataloader.engine import default_warehouse_root
    from include.dataloader.target import LocalWarehouse
    from include.local import spark

    schema = LocalWarehouse(spark.session(), default_warehouse_root()).read(name).schema
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def _dag(dag_id: str, schedule: str, doc: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["dataloader", "monitor"],
        default_args={
            "owner": os.environ.get("DATALOADER_OWNER", "data-platform"),
            "retries": 1,
            "retry_delay": timedelta(minutes=1),
        },
        doc_md=doc,
    )


def build_monitor_dags() -> dict[str, DAG]:
    dags = {}

    with _dag(
        "dataloader_monitor_long_queued",
        "*/10 * * * *",
        "Rows Queued longer than `DATALOADER_QUEUED_LIMIT_MINUTES` (60) become Failed "
        "('Cancelled - stuck in queue'); their queued Airflow runs are failed.",
    ) as dag:

        @task
        def cancel_long_queued() -> list[dict]:
            from include.dataloader.monitors.stuck import cancel_long_queued as run

            return run(_repo(), _airflow(), threshold=_minutes("DATALOADER_QUEUED_LIMIT_MINUTES", 60))

        cancel_long_queued()
    dags[dag.dag_id] = dag

    with _dag(
        "dataloader_monitor_long_running",
        "*/10 * * * *",
        "Rows In Progress longer than their `max_running_minutes` (default "
        "`DATALOADER_RUNNING_LIMIT_MINUTES`, 180) become Failed ('Cancelled - exceeded timeout'); their "
        "Airflow runs are failed and their Databricks runs cancelled.",
    ) as dag:

        @task
        def cancel_long_running() -> list[dict]:
            from include.dataloader.monitors.stuck import cancel_long_running as run

            return run(_repo(), _airflow(), _databricks(), threshold=_minutes("DATALOADER_RUNNING_LIMIT_MINUTES", 180))

        cancel_long_running()
    dags[dag.dag_id] = dag

    with _dag(
        "dataloader_monitor_failed",
        "*/15 * * * *",
        "Failed rows with retries left (`DATALOADER_MAX_RETRIES`, 3) get a retry analysis: RETRY clears the "
        "status, counts the retry and starts the table's DAG; REVIEW keeps it Failed and pages the row's "
        "alert target.",
    ) as dag:

        @task
        def analyze_failed() -> list[dict]:
            from dataplatform.notifications.pager import AlertPager
            from include.dataloader.monitors.failed import analyze_failed as run

            return run(
                _repo(),
                _analyzer(),
                _airflow(),
                AlertPager(),
                max_retries=int(os.environ.get("DATALOADER_MAX_RETRIES", "3")),
            )

        analyze_failed()
    dags[dag.dag_id] = dag

    with _dag(
        "dataloader_monitor_landed",
        "*/30 * * * *",
        "Landed tables without staging models get a dbt source entry and a staging model, committed to the "
        "git working tree `DATALOADER_STAGING_REPO` (pushed when `DATALOADER_STAGING_PUSH` is on).",
    ) as dag:

        @task
        def stage_landed_tables() -> list[dict]:
            from pathlib import Path

            from include.dataloader.monitors.staging import process_landed

            worktree = os.environ.get("DATALOADER_STAGING_REPO")
            if not worktree:
                raise ValueError("set DATALOADER_STAGING_REPO to the git working tree of the dbt project")
            push = os.environ.get("DATALOADER_STAGING_PUSH", "off").lower() in ("on", "true", "1")
            return process_landed(_repo(), Path(worktree), _columns_of, push=push)

        stage_landed_tables()
    dags[dag.dag_id] = dag

    with _dag(
        "dataloader_reconciler",
        "*/10 * * * *",
        "Airflow is the source of truth for runs: rows that say Queued or In Progress while their Airflow "
        "run has ended are set to Failed (recorded in table_control_history).",
    ) as dag:

        @task
        def reconcile() -> list[dict]:
            from include.dataloader.monitors.reconcile import reconcile as run

            return run(_repo(), _airflow())

        reconcile()
    dags[dag.dag_id] = dag
    return dags
