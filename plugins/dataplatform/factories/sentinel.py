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


def _layout(dag_id: str, run_id: str):
    from include.sentinel.steps import Layout

    return Layout(artifacts_root(dag_id, run_id), run_id)


AIRFLOW_FIELDS = {"schedule", "alert_target", "sla_minutes", "catch_up"}


def _settings(path: Path) -> dict[str, Any]:
    """The config's ``airflow:`` section, once the whole file has been checked (at parse time: no database
    nor environment is read, only the file)."""
    from include.sentinel.config import ConfigError, parse_config

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping with source_database, target_database, tables, options, airflow")
    parse_config({k: v for k, v in raw.items() if k != "airflow"})
    settings = raw.get("airflow") or {}
    if not isinstance(settings, dict) or (unknown := set(settings) - AIRFLOW_FIELDS):
        raise ConfigError(f"airflow: unknown fields {sorted(unknown or settings)}; known: {sorted(AIRFLOW_FIELDS)}")
    if settings.get("sla_minutes") is not None and not isinstance(settings["sla_minutes"], int | float):
        raise ConfigError(f"airflow.sla_minutes: expected a number of minutes, got {settings['sla_minutes']!r}")
    catch_up = settings.get("catch_up")
    if catch_up is not None and not (isinstance(catch_up, dict) and catch_up.get("conn_id") and catch_up.get("sql")):
        raise ConfigError(
            "airflow.catch_up: give conn_id and sql (and optionally db_type, max_wait_minutes, poll_seconds)"
        )
    if catch_up is not None:  # the query runs with the driver of db_type: by default the target's
        settings = {**settings, "catch_up": {"db_type": raw["target_database"]["db_type"], **catch_up}}
    return settings


def sentinel_dags() -> dict[str, DAG]:
    """One DAG per config file; a file that cannot be used gives its own placeholder DAG saying why, and
    leaves the others alone."""
    dags = {}
    for path in sorted(config_dir().glob("*.yaml")):
        try:
            dag = sentinel_dag(path, _settings(path))
        except Exception as exc:
            dag = invalid_config_dag(path, exc)
        dags[dag.dag_id] = dag
    return dags


def invalid_config_dag(path: Path, error: Exception) -> DAG:
    """A placeholder for a config that cannot be used: its one task fails with the reason."""
    message = f"{path.name}: {error}"
    with DAG(
        dag_id=f"sentinel_{path.stem}",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        tags=["sentinel", "invalid-config"],
        default_args={"owner": os.environ.get("DATALOADER_OWNER", "data-platform")},
        doc_md=(
            f"## Comparison config `{path.name}` is invalid and is not run\n\n```\n{message}\n```\n\n"
            "Fix the file; this DAG becomes the comparison DAG at the next parse."
        ),
    ) as dag:

        @task(task_id="report_invalid_config", retries=0)
        def report_invalid_config() -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(message)

        report_invalid_config()
    return dag


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
                    db_type=catch_up["db_type"],
                    sql=catch_up["sql"],
                    max_wait=timedelta(minutes=float(catch_up.get("max_wait_minutes", 30))),
                    poll_interval=float(catch_up.get("poll_seconds", 30)),
                )
            )

        @task
        def plan(**context) -> list[dict]:
            from include.sentinel.steps import plan_tables

            layout = _layout(dag_id, context["run_id"])
            return plan_tables(_config(path), layout, tables=context["params"]["tables"] or None)

        @task(pool=os.environ.get("SENTINEL_POOL", "sentinel_compare"))
        def compare_chunks(item: dict, **context) -> list[dict]:
            from include.sentinel.steps import compare_batch

            return compare_batch(_config(path), _layout(dag_id, context["run_id"]), item)

        @task
        def tables_of(items: list[dict]) -> list[str]:
            return sorted({item["table"] for item in items})

        @task
        def finish_table(table: str, **context) -> dict:
            from include.sentinel.steps import finish_table as finish

            params = context["params"]
            return finish(
                _config(path),
                _layout(dag_id, context["run_id"]),
                table,
                allow_deletes=params["allow_deletes"],
                reverify_wait=float(params["reverify_wait"]),
            )

        @task
        def report(summaries: list[dict], **context) -> dict:
            from dataplatform.notifications.alerts import Alert, AlertNotifier
            from include.sentinel.steps import write_report

            summaries = list(summaries)
            path = write_report(_layout(dag_id, context["run_id"]), summaries)
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
