"""One DB Sentinel DAG per comparison config file (``include/sentinel/configs/*.yaml``), built from the
files alone. Tasks:

    [wait_for_target] >> plan >> compare_chunks (mapped) >> finish_table (mapped per table) >> report

Row-level results and SQL go to the artifacts root (``$SENTINEL_ARTIFACTS_ROOT``: a local folder by
default, s3://, abfs:// or dbfs:// by URL); XCom carries summaries and paths only.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, ObjectStoragePath, Param, task

from dataplatform.notifications.callbacks import TaskFailureAlert, deadline_missed

ROOT = Path(__file__).resolve().parents[3]
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)


def config_dir() -> Path:
    return Path(os.environ.get("SENTINEL_CONFIG_DIR", ROOT / "include" / "sentinel" / "configs"))


def artifacts_root(dag_id: str, run_id: str) -> ObjectStoragePath:
    default = f"file://{Path(os.environ.get('AIRFLOW_HOME', '.')).resolve()}/sentinel"
    base = ObjectStoragePath(os.environ.get("SENTINEL_ARTIFACTS_ROOT", default))
    return base / dag_id / run_id.replace(":", "_").replace("+", "_")


def _config(path: Path):
    from include.sentinel.config import load_config

    return load_config(path)


def sentinel_dags() -> dict[str, DAG]:
    dags = {}
    for path in sorted(config_dir().glob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        airflow = raw.get("airflow") or {}
        dag = sentinel_dag(path, airflow)
        dags[dag.dag_id] = dag
    return dags


def sentinel_dag(path: Path, settings: dict[str, Any]) -> DAG:
    dag_id = f"sentinel_{path.stem}"
    alert_target = settings.get("alert_target")
    deadline = None
    deadlines_on = os.environ.get("DATALOADER_DEADLINE_ALERTS", "on").lower() not in ("off", "false", "0")
    if settings.get("sla_minutes") and deadlines_on:
        deadline = DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(minutes=float(settings["sla_minutes"])),
            callback=AsyncCallback(
                deadline_missed,
                kwargs={
                    "control_key": dag_id,
                    "dag_id": dag_id,
                    "sla_minutes": settings["sla_minutes"],
                    "alert_target": alert_target,
                },
            ),
        )
    with DAG(
        dag_id=dag_id,
        schedule=settings.get("schedule"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["sentinel"],
        default_args={
            "owner": os.environ.get("DATALOADER_OWNER", "data-platform"),
            "retries": int(os.environ.get("SENTINEL_RETRIES", "1")),
            "retry_delay": timedelta(seconds=float(os.environ.get("SENTINEL_RETRY_DELAY_SECONDS", "60"))),
            "on_failure_callback": TaskFailureAlert(subject=dag_id, target=alert_target),
        },
        doc_md=f"Compares the tables of `{path.name}` between its source and target databases (DB Sentinel).",
        deadline=deadline,
        params={
            "tables": Param([], type="array", description="tables to compare (default: all in the config)"),
            "allow_deletes": Param(False, type="boolean", description="emit DELETEs in the sync SQL uncommented"),
            "reverify_wait": Param(0, type="number", description="seconds to wait before re-verifying"),
        },
    ) as dag:
        catch_up = settings.get("catch_up")
        waits = []
        if catch_up:
            from dataplatform.sensors.sql_condition import SqlConditionSensor

            waits.append(
                SqlConditionSensor(
                    task_id="wait_for_target",
                    conn_id=catch_up["conn_id"],
                    sql=catch_up["sql"],
                    max_wait=timedelta(minutes=float(catch_up.get("max_wait_minutes", 30))),
                    poll_interval=float(catch_up.get("poll_seconds", 30)),
                )
            )

        @task
        def plan(**context) -> list[dict]:
            from include.sentinel.steps import plan_tables

            root = artifacts_root(dag_id, context["run_id"])
            return plan_tables(_config(path), root, tables=context["params"]["tables"] or None)

        @task(pool=os.environ.get("SENTINEL_POOL", "sentinel_compare"))
        def compare_chunks(item: dict, **context) -> list[dict]:
            from include.sentinel.steps import compare_batch

            return compare_batch(_config(path), artifacts_root(dag_id, context["run_id"]), item)

        @task
        def tables_of(items: list[dict]) -> list[str]:
            return sorted({item["table"] for item in items})

        @task
        def finish_table(table: str, **context) -> dict:
            from include.sentinel.steps import finish_table as finish

            params = context["params"]
            return finish(
                _config(path),
                artifacts_root(dag_id, context["run_id"]),
                table,
                run_id=context["run_id"],
                allow_deletes=params["allow_deletes"],
                reverify_wait=float(params["reverify_wait"]),
            )

        @task
        def report(summaries: list[dict], **context) -> dict:
            from dataplatform.notifications.alerts import Alert, AlertNotifier
            from include.sentinel.steps import write_report

            summaries = list(summaries)
            path = write_report(artifacts_root(dag_id, context["run_id"]), summaries)
            differing = [s for s in summaries if s.get("sql_file")]
            if differing:
                text = "; ".join(
                    f"{s['table']}: {s['missing_in_target']} missing on target, {s['missing_in_source']} extra, "
                    f"{s['different']} different"
                    for s in differing
                )
                links = {"report": path, **{f"SQL {s['table']}": s["sql_file"] for s in differing}}
                alert = Alert(
                    title=f"{dag_id}: differences found", text=text, severity="warning", control_key=dag_id, links=links
                )
                AlertNotifier(target=alert_target, alert=alert).notify(context)
            return {"report": path, "tables": len(summaries), "tables_with_differences": len(differing)}

        items = plan()
        compared = compare_chunks.expand(item=items)
        finished = finish_table.expand(table=tables_of(items))
        compared >> finished
        for wait in waits:
            wait >> items
        report(finished)
    return dag
