"""One loader DAG per active control row, built from the control snapshot (never from the database).

Task shapes:
- full, incremental, append_only, rolling:  queue >> load
- check_and_load:                           wait_for_changes (deferred) >> queue >> load
- chunked_backfill:                         queue >> plan >> load_chunk (one mapped task per chunk) >> finalize

A row with ``verify`` on gets a ``verify`` task after ``load`` (after ``finalize`` for a backfill).

A row that fails validation does not stop the others: it gets a placeholder DAG
(``dataloader_invalid__<key>``, tagged ``invalid-config``) whose description and only task state the
problem and the fix, and a warning in the parse log.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from dataplatform.notifications.callbacks import TaskFailureAlert, deadline_missed
from dataplatform.operators.load import DatabricksLoadOperator, LoadTableOperator, QueueLoadOperator
from dataplatform.operators.verify import VerifyLoadOperator
from dataplatform.sensors.source_changes import SourceChangesSensor
from include.control import snapshot
from include.control.model import CONFIG_FIELDS, ControlRow, InvalidControlRow

START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
INVALID_PREFIX = "dataloader_invalid__"


class InvalidControlRowWarning(UserWarning):
    pass


def _env_json(name: str, default: Any) -> Any:
    raw = os.environ.get(name)
    return json.loads(raw) if raw else default


@dataclass(frozen=True)
class LoaderSettings:
    """Per-environment settings of the loader DAGs, read from the environment at parse time.

    A row's own ``execution_target`` wins over ``execution_target`` here.
    """

    execution_target: str = "local"
    owner: str = "data-platform"
    pool: str = "dataloader_sources"
    retries: int = 2
    retry_delay: timedelta = timedelta(minutes=2)
    deadline_alerts: bool = True
    chunk_parallelism: int = 1  # backfill chunks of one table written at a time (Delta write conflicts)
    change_wait: timedelta = timedelta(minutes=30)
    claim_poll_seconds: float = 60.0  # a run waiting for the row another run holds tries again this often
    claim_timeout: timedelta = timedelta(hours=6)  # and fails after waiting this long
    change_poll_seconds: float = 60.0
    databricks_conn_id: str = "databricks_default"
    databricks_poll_seconds: int = 30
    databricks_job_file: str = "/Workspace/Shared/dataloader/include/dataloader/job.py"
    databricks_sql_http_path: str | None = None  # the SQL warehouse the verify task reads bronze through
    databricks_cluster: Mapping[str, Any] = field(
        default_factory=lambda: {
            "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_D4ds_v5", "num_workers": 2}
        }
    )

    @classmethod
    def from_env(cls) -> LoaderSettings:
        env = os.environ.get
        return cls(
            execution_target=env("DATALOADER_EXECUTION_TARGET", "local"),
            owner=env("DATALOADER_OWNER", "data-platform"),
            pool=env("DATALOADER_POOL", "dataloader_sources"),
            retries=int(env("DATALOADER_RETRIES", "2")),
            retry_delay=timedelta(seconds=float(env("DATALOADER_RETRY_DELAY_SECONDS", "120"))),
            deadline_alerts=env("DATALOADER_DEADLINE_ALERTS", "on").lower() not in ("off", "false", "0"),
            chunk_parallelism=int(env("DATALOADER_CHUNK_PARALLELISM", "1")),
            change_wait=timedelta(minutes=float(env("DATALOADER_CHANGE_WAIT_MINUTES", "30"))),
            change_poll_seconds=float(env("DATALOADER_CHANGE_POLL_SECONDS", "60")),
            claim_poll_seconds=float(env("DATALOADER_CLAIM_POLL_SECONDS", "60")),
            claim_timeout=timedelta(minutes=float(env("DATALOADER_CLAIM_WAIT_MINUTES", "360"))),
            databricks_conn_id=env("DATALOADER_DATABRICKS_CONN_ID", "databricks_default"),
            databricks_poll_seconds=int(env("DATALOADER_DATABRICKS_POLL_SECONDS", "30")),
            databricks_job_file=env("DATALOADER_DATABRICKS_JOB_FILE", cls.databricks_job_file),
            databricks_sql_http_path=env("DATALOADER_DATABRICKS_SQL_HTTP_PATH") or None,
            databricks_cluster=_env_json("DATALOADER_DATABRICKS_CLUSTER", cls().databricks_cluster),
        )


def loader_dags_from_snapshot(*, only: str | None = None, settings: LoaderSettings | None = None) -> dict[str, DAG]:
    """The DAGs of the current snapshot; ``only`` builds just that DAG (a task run needs one)."""
    return loader_dags(snapshot.read(snapshot.default_path()).rows, only=only, settings=settings)


def loader_dags(
    rows: Iterable[Mapping[str, Any]], *, only: str | None = None, settings: LoaderSettings | None = None
) -> dict[str, DAG]:
    settings = settings or LoaderSettings.from_env()
    dags: dict[str, DAG] = {}
    for raw in rows:
        key = str(raw.get("control_key"))
        if only is not None and only not in (key, invalid_dag_id(key)):
            continue
        if raw.get("is_active") is False:  # a deactivated row's DAG disappears
            continue
        try:
            row = ControlRow.from_mapping({k: v for k, v in raw.items() if k in CONFIG_FIELDS})
            dags[row.control_key] = loader_dag(row, raw.get("db_type"), settings)
        except (InvalidControlRow, ValueError) as exc:
            warnings.warn(f"loader DAG of control row {key!r} skipped: {exc}", InvalidControlRowWarning, stacklevel=2)
            dags[invalid_dag_id(key)] = invalid_row_dag(key, exc, settings)
    return dags


def invalid_dag_id(control_key: str) -> str:
    return INVALID_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", control_key)


def describe(row: ControlRow, db_type: str | None, target: str) -> str:
    cursor = f"`{row.incremental_column}` ({row.incremental_type})" if row.incremental_column else "none"
    source = ".".join(p for p in (row.source_schema, row.source_table_name) if p)
    lines = [
        f"## {row.control_key}",
        "",
        f"Loads `{source}` from `{row.db_config_key}` ({db_type or 'unknown'}) into `{row.destination}`.",
        "",
        "| setting | value |",
        "|---|---|",
        f"| strategy | `{row.load_strategy}` |",
        f"| schedule | `{row.cron}` (UTC; each run covers the interval since the previous one) |",
        f"| cursor | {cursor} |",
        f"| primary key | {', '.join(f'`{c}`' for c in row.primary_key_columns) or 'none'} |",
        f"| runs on | {target} |",
        f"| deadline | {f'{row.sla_minutes} minutes after queueing' if row.sla_minutes else 'none'} |",
        f"| alerts | {row.alert_target or 'none'} |",
        f"| verify | {'after each load, in the strategy terms' if row.verify else 'off'} |",
        "",
        "Trigger with params to force a full reload, override the watermark for one run, or reload the",
        "run's data interval. `airflow backfill create` reloads each interval without moving the watermark.",
        "The live settings are in the control table: `dataloader tables show " + row.control_key + "`.",
    ]
    return "\n".join(lines)


def loader_dag(row: ControlRow, db_type: str | None, settings: LoaderSettings) -> DAG:
    target = row.execution_target or settings.execution_target
    key = row.control_key
    deadline = None
    if row.sla_minutes and settings.deadline_alerts:
        deadline = DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(minutes=row.sla_minutes),
            callback=AsyncCallback(
                deadline_missed,
                kwargs={
                    "control_key": key,
                    "dag_id": key,
                    "sla_minutes": row.sla_minutes,
                    "alert_target": row.alert_target,
                },
            ),
        )
    with DAG(
        dag_id=key,
        schedule=CronDataIntervalTimetable(row.cron, timezone="UTC"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["dataloader", f"source:{db_type or 'unknown'}", f"strategy:{row.load_strategy}", f"target:{target}"],
        default_args={
            "owner": settings.owner,
            "retries": settings.retries,
            "retry_delay": settings.retry_delay,
            "on_failure_callback": TaskFailureAlert(subject=key, target=row.alert_target),
        },
        doc_md=describe(row, db_type, target),
        params={
            "force_full_reload": Param(False, type="boolean", description="Read the whole source table."),
            "watermark_override": Param(
                None, type=["null", "string"], description="Start this run from this watermark instead."
            ),
            "reload_interval": Param(
                False, type="boolean", description="Reload this run's data interval, as a backfill run does."
            ),
        },
        deadline=deadline,
    ) as dag:
        # every writing task claims the row for its run, waiting (deferred) while another live run holds it
        claim = {"claim_poll_seconds": settings.claim_poll_seconds, "claim_timeout": settings.claim_timeout}
        queue = QueueLoadOperator(task_id="queue", control_key=key, **claim)

        def load_task(task_id: str, **kwargs):
            common = {"task_id": task_id, "control_key": key, "pool": settings.pool, **claim, **kwargs}
            if target == "databricks":
                return DatabricksLoadOperator(
                    python_file=settings.databricks_job_file,
                    cluster=settings.databricks_cluster,
                    databricks_conn_id=settings.databricks_conn_id,
                    polling_period_seconds=settings.databricks_poll_seconds,
                    **common,
                )
            return LoadTableOperator(**common)

        if row.load_strategy == "chunked_backfill":
            plan = load_task("plan", action="plan")
            chunk_common = {
                "task_id": "load_chunk",
                "control_key": key,
                "pool": settings.pool,
                "action": "chunk",
                **claim,
            }
            chunk_common["max_active_tis_per_dagrun"] = settings.chunk_parallelism
            if target == "databricks":
                chunks = DatabricksLoadOperator.partial(
                    python_file=settings.databricks_job_file,
                    cluster=settings.databricks_cluster,
                    databricks_conn_id=settings.databricks_conn_id,
                    polling_period_seconds=settings.databricks_poll_seconds,
                    **chunk_common,
                ).expand(chunk=plan.output)
            else:
                chunks = LoadTableOperator.partial(**chunk_common).expand(chunk=plan.output)
            last = load_task("finalize", action="finalize")
            queue >> plan >> chunks >> last
        elif row.load_strategy == "check_and_load":
            wait = SourceChangesSensor(
                task_id="wait_for_changes",
                control_key=key,
                max_wait=settings.change_wait,
                poll_interval=settings.change_poll_seconds,
            )
            last = load_task("load")
            wait >> queue >> last
        else:
            last = load_task("load")
            queue >> last
        if row.verify:
            last >> VerifyLoadOperator(
                task_id="verify",
                control_key=key,
                strategy=row.load_strategy,  # a finished backfill's row says incremental: verify in its terms
                target=target,
                databricks_conn_id=settings.databricks_conn_id,
                databricks_sql_http_path=settings.databricks_sql_http_path,
                pool=settings.pool,
            )
    return dag


def invalid_row_dag(control_key: str, error: Exception, settings: LoaderSettings) -> DAG:
    with DAG(
        dag_id=invalid_dag_id(control_key),
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        tags=["dataloader", "invalid-config"],
        default_args={"owner": settings.owner},
        doc_md=(
            f"## Control row `{control_key}` is invalid and is not loaded\n\n```\n{error}\n```\n\n"
            "Fix the row (`dataloader tables update ...`); this DAG disappears and the table's loader DAG "
            "appears once the control snapshot is refreshed (every minute)."
        ),
    ) as dag:
        message = str(error)

        @task(task_id="report_invalid_row", retries=0)
        def report_invalid_row() -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(message)

        report_invalid_row()
    return dag
