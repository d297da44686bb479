"""Operators that load one control row's table, recording the lifecycle in the control database.

A loader DAG run: ``queue`` (the row becomes Queued) → ``load`` (In Progress when a worker slot is free,
then Succeeded or Failed). A chunked backfill: ``queue`` → ``plan`` → ``load_chunk`` mapped over the
chunks → ``finalize``. The work runs in the worker (:class:`LoadTableOperator`, the local engine) or as a
Databricks run (:class:`DatabricksLoadOperator`); which one is configuration, chosen by the DAG factory.

The operators read the live control row when they run, never the parse-time snapshot. Each task claims
the row for its run first (:mod:`include.control.lifecycle`): a task of a run whose row another live run
holds waits, deferred, so the runs of one table never write it at the same time, and any task may be
cleared or retried and re-runs idempotently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from airflow.providers.databricks.hooks.databricks import RunState
from airflow.providers.databricks.operators.databricks import (
    XCOM_RUN_ID_KEY,
    XCOM_RUN_PAGE_URL_KEY,
    DatabricksSubmitRunOperator,
)
from airflow.providers.databricks.utils.databricks import extract_failed_task_errors, validate_trigger_event
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from dataplatform.exceptions import RunRefused
from dataplatform.hooks.control import ControlDatabaseHook
from dataplatform.hooks.databricks_runs import LoadRunHook, TaskOutput, submit_payload
from dataplatform.hooks.source import source_params
from dataplatform.links import airflow_run_url
from dataplatform.triggers.databricks_run import DatabricksRunTrigger
from include.control.lifecycle import Lifecycle, RowBusy, RowInactive, RowLost
from include.control.repository import ControlRepository
from include.dataloader.redact import describe

Action = Literal["load", "plan", "chunk", "finalize"]
BACKFILL_RUN_TYPE = "backfill"
LIVE_RUN_STATES = ("queued", "running")
INTERVAL_STRATEGIES = ("incremental", "append_only", "check_and_load")  # the ones that read by the interval
CLAIM_POLL_SECONDS = 60.0
CLAIM_TIMEOUT = timedelta(hours=6)


def run_is_live(context, run_id: str) -> bool | None:
    """Whether another run of this DAG is still queued or running, from Airflow (the Task SDK);
    None for a `dataloader run` from a shell, or when Airflow cannot tell."""
    if run_id.startswith("cli__"):
        return None
    try:
        state = context["ti"].get_dagrun_state(dag_id=context["dag"].dag_id, run_id=run_id)
    except Exception:  # no such run (deleted), or no Task SDK (a bare operator call)
        return None
    return getattr(state, "value", state) in LIVE_RUN_STATES  # a str Enum without __str__: compare its value


def run_change_source(context) -> str:
    """Who the row's history names for this run's changes: ``airflow``, or ``airflow:<user>`` for a run a
    user triggered (the UI, the REST API, ``airflow backfill create``)."""
    user = getattr(context.get("dag_run"), "triggering_user_name", None)
    return f"airflow:{user}" if user else "airflow"


class LoadLifecycle:
    """What every loader task does around its work: find the live row, claim it for this DAG run (waiting,
    deferred, while another live run holds it), and record success or failure through
    :class:`include.control.lifecycle.Lifecycle`. Mixed into operators that set ``control_key``,
    ``control_conn_id``, ``action`` (and ``chunk``), ``claim_poll_seconds`` and ``claim_timeout``."""

    control_key: str
    control_conn_id: str
    action: Action | Literal["queue"]
    chunk: dict[str, Any] | None = None
    claim_poll_seconds: float = CLAIM_POLL_SECONDS
    claim_timeout: timedelta = CLAIM_TIMEOUT
    _waiting_since: str | None = None

    @cached_property
    def repo(self) -> ControlRepository:
        return ControlDatabaseHook(self.control_conn_id).repository(change_source="airflow")

    @property
    def step(self) -> str | None:
        """The task as a step of its run (plan, load_chunk[i]); None for the run's final task."""
        if self.action == "plan":
            return "plan"
        if self.action == "chunk":
            return f"load_chunk[{(self.chunk or {}).get('index', '?')}]"
        return None

    def lifecycle(self, context) -> Lifecycle:
        self.repo.change_source = run_change_source(context)
        run_id = context["run_id"]
        dag = context.get("dag")
        return Lifecycle(
            self.repo,
            self.control_key,
            run_id,
            is_live=lambda other: run_is_live(context, other),
            airflow_run_url=airflow_run_url(dag.dag_id if dag else self.control_key, run_id),  # dag_id: the key
        )

    def begin(self, context) -> tuple[dict[str, Any], dict[str, Any]]:
        """Claim the row for this run; returns the claimed row (with its dbconfig's db_type) and the job's
        inputs. Defers while another live run holds the row; skips when the row is inactive."""
        self.repo.change_source = run_change_source(context)
        self.request(context, self.repo.require(self.control_key))  # refuses before the row is touched
        life = self.lifecycle(context)
        try:
            life.start() if self.step is None else life.start_step(self.step)
        except RowBusy as busy:
            self.wait_for_row(context, busy)
        except RowInactive as inactive:
            raise AirflowSkipException(str(inactive)) from None
        row = self.repo.require(self.control_key)  # as claimed: the watermark another run may have moved
        return row, self.request(context, row)

    def wait_for_row(self, context, busy: RowBusy) -> None:
        """Defer for ``claim_poll_seconds``, then claim again; fail after ``claim_timeout`` of waiting."""
        since = datetime.fromisoformat(self._waiting_since) if self._waiting_since else datetime.now(UTC)
        waited = datetime.now(UTC) - since
        if waited > self.claim_timeout:
            raise AirflowFailException(
                f"{busy} (waited {int(waited.total_seconds() // 60)} minutes, the limit is "
                f"{int(self.claim_timeout.total_seconds() // 60)}); clear this task once that run has ended"
            )
        self.log.info("%s; next try in %ss", busy, self.claim_poll_seconds)
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=self.claim_poll_seconds)),
            method_name="claim_after_wait",
            kwargs={"waiting_since": since.isoformat()},
        )

    def claim_after_wait(self, context, event: Any = None, waiting_since: str | None = None):
        self._waiting_since = waiting_since
        return self.execute(context)

    def request(self, context, row: Mapping[str, Any]) -> dict[str, Any]:
        """The job's inputs for this run: watermark, interval, from the row and the run's params.

        A run that reloads its data interval (a backfill, ``reload_interval``) is refused for a table read
        by an integer cursor: a time interval cannot select its rows.
        """
        params = context.get("params") or {}
        watermark = row["incremental_value"]
        if params.get("force_full_reload"):
            watermark = None
        elif params.get("watermark_override"):
            watermark = str(params["watermark_override"])
        interval = None
        dag_run = context.get("dag_run")
        if dag_run is not None and (dag_run.run_type == BACKFILL_RUN_TYPE or params.get("reload_interval")):
            start, end = context["data_interval_start"], context["data_interval_end"]
            interval = (_cursor_text(start), _cursor_text(end))
            if row.get("incremental_type") == "integer" and row.get("load_strategy") in INTERVAL_STRATEGIES:
                raise RunRefused(integer_interval_refusal(self.control_key, row, context["run_id"], interval))
        return {"watermark": watermark, "interval": interval}

    def finish(self, context, summary: Mapping[str, Any]) -> None:
        """Record success: the run's result for its final task, the step's success for a step."""
        life = self.lifecycle(context)
        if self.step is not None:
            life.step_succeeded(self.step)
            return
        try:
            life.succeed(summary)
        except RowLost as lost:
            raise AirflowFailException(str(lost)) from None

    def failed(self, context, exc: BaseException) -> None:
        self.lifecycle(context).fail(describe(exc), step=self.step)


def integer_interval_refusal(control_key: str, row: Mapping[str, Any], run_id: str, interval: tuple) -> str:
    return (
        f"{control_key}: run {run_id} would reload its data interval [{interval[0]}, {interval[1]}), but the "
        f"table is read by the integer cursor {row.get('incremental_column')!r}, which a time interval cannot "
        "select; nothing was loaded and the row is unchanged. To reload rows of this table, trigger a run "
        "with force_full_reload=true (reads the whole table and merges it) or watermark_override=<id> (reads "
        "from that id); do not backfill it"
    )


def _cursor_text(moment) -> str:
    return moment.isoformat(sep=" ") if moment is not None else None


def summary_for_xcom(result: Mapping[str, Any]) -> Any:
    """What a task returns: the job's summary (a small dict) or the chunk plan (a list of small dicts)."""
    return result["chunks"] if "chunks" in result else result.get("summary", result)


class QueueLoadOperator(LoadLifecycle, BaseOperator):
    """Mark the row Queued for this DAG run (and open its historical_metadata row).

    While another live run holds the row (a backfill's other runs, a `dataloader run` from a shell), waits,
    deferred, and queues it when that run has ended. Skips, saying why, when the row is inactive; refuses an
    interval reload of an integer-cursor table. A no-op when this run already holds the row (cleared).

    :param control_key: the control row.
    :param control_conn_id: the control database connection.
    :param claim_poll_seconds: how often a waiting run tries again.
    :param claim_timeout: how long it waits before failing.
    """

    template_fields = ("control_key",)
    ui_color = "#fdf3d8"
    action = "queue"

    def __init__(
        self,
        *,
        control_key: str,
        control_conn_id: str = "dataloader_control",
        claim_poll_seconds: float = CLAIM_POLL_SECONDS,
        claim_timeout: timedelta = CLAIM_TIMEOUT,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.control_key = control_key
        self.control_conn_id = control_conn_id
        self.claim_poll_seconds = claim_poll_seconds
        self.claim_timeout = claim_timeout

    def execute(self, context) -> dict[str, str]:
        self.repo.change_source = run_change_source(context)
        self.request(context, self.repo.require(self.control_key))  # refuses what this run cannot load
        try:
            row = self.lifecycle(context).queue()
        except RowBusy as busy:
            self.wait_for_row(context, busy)
        except RowInactive as inactive:
            raise AirflowSkipException(str(inactive)) from None
        self.log.info("%s is %s for run %s", self.control_key, row["last_status"], context["run_id"])
        return {"control_key": self.control_key, "run_id": context["run_id"]}


class LoadTableOperator(LoadLifecycle, BaseOperator):
    """Run a load (or a step of a chunked backfill) in the worker, on the local engine.

    :param control_key: the control row.
    :param action: ``load``; or ``plan``, ``chunk``, ``finalize`` for a chunked backfill.
    :param chunk: the chunk to load (``action="chunk"``), one item of the plan.
    :param control_conn_id: the control database connection.
    """

    template_fields = ("control_key", "chunk")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        control_key: str,
        action: Action = "load",
        chunk: dict[str, Any] | None = None,
        control_conn_id: str = "dataloader_control",
        claim_poll_seconds: float = CLAIM_POLL_SECONDS,
        claim_timeout: timedelta = CLAIM_TIMEOUT,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.control_key = control_key
        self.action = action
        self.chunk = chunk
        self.control_conn_id = control_conn_id
        self.claim_poll_seconds = claim_poll_seconds
        self.claim_timeout = claim_timeout

    def execute(self, context) -> Any:
        from include.dataloader.engine import local_engine
        from include.dataloader.job import control_row, execute

        row, request = self.begin(context)
        try:
            dbconfig = self.repo.get_dbconfig(row["db_config_key"])
            params = source_params(row["db_config_key"])  # in Airflow, the source is its Airflow connection
            result = execute(
                local_engine(),
                control_row(row),
                dbconfig,
                action=self.action,
                chunk=self.chunk,
                params=params,
                **request,
            )
            self.finish(context, result.get("summary", {}))
        except BaseException as exc:
            self.failed(context, exc)
            raise
        self.log.info("%s %s: %s", self.control_key, self.action, json.dumps(result, default=str)[:2000])
        return summary_for_xcom(result)


class DatabricksLoadOperator(LoadLifecycle, DatabricksSubmitRunOperator):
    """Run a load (or a backfill step) as a Databricks run of the job entrypoint, deferring while it runs.

    The run is a ``spark_python_task`` of ``python_file`` (``include/dataloader/job.py`` in the workspace)
    whose parameters carry the control row and the dbconfig (secret names only). The run page URL is stored
    in the control row; the job's JSON summary, read from the run's output, is the task's return value.

    :param control_key: the control row.
    :param python_file: the job entrypoint in the workspace (or a ``dbfs:``/volume path).
    :param cluster: ``{"existing_cluster_id": ...}`` or ``{"new_cluster": {...}}``.
    :param action: as :class:`LoadTableOperator`.
    :param chunk: as :class:`LoadTableOperator`.
    """

    template_fields = (*DatabricksSubmitRunOperator.template_fields, "control_key", "chunk")

    def __init__(
        self,
        *,
        control_key: str,
        python_file: str,
        cluster: Mapping[str, Any],
        action: Action = "load",
        chunk: dict[str, Any] | None = None,
        control_conn_id: str = "dataloader_control",
        claim_poll_seconds: float = CLAIM_POLL_SECONDS,
        claim_timeout: timedelta = CLAIM_TIMEOUT,
        **kwargs,
    ):
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("durable", True)
        super().__init__(**kwargs)
        self.control_key = control_key
        self.python_file = python_file
        self.cluster = dict(cluster)
        self.action = action
        self.chunk = chunk
        self.control_conn_id = control_conn_id
        self.claim_poll_seconds = claim_poll_seconds
        self.claim_timeout = claim_timeout

    def execute(self, context):
        from include.dataloader.job import job_arguments

        row, request = self.begin(context)
        try:
            dbconfig = self.repo.get_dbconfig(row["db_config_key"])
            self.json = submit_payload(
                run_name=f"dataloader {self.control_key} {self.action} {context['run_id']}",
                cluster=self.cluster,
                python_file=self.python_file,
                parameters=job_arguments(row, dbconfig, action=self.action, chunk=self.chunk, **request),
            )
            self.run_id = self._submit_or_reconnect(context, self._prepare_submit_json(context))
            run_page_url = self._hook.get_run_page_url(self.run_id)
            # stored at once: the long-running monitor cancels the Databricks run from it
            self.repo.set_databricks_run_url(self.control_key, context["run_id"], run_page_url)
            context["ti"].xcom_push(key=XCOM_RUN_ID_KEY, value=self.run_id)
            context["ti"].xcom_push(key=XCOM_RUN_PAGE_URL_KEY, value=run_page_url)
            self.log.info("%s: Databricks run %s submitted: %s", self.control_key, self.run_id, run_page_url)
            run = self._hook.get_run(self.run_id)
        except BaseException as exc:
            self.failed(context, exc)
            raise
        state = RunState(**run["state"])
        if state.is_terminal:  # a reconnected run that has ended meanwhile: nothing to wait for
            event = {"run_id": self.run_id, "run_page_url": run_page_url, "run_state": state.to_json()}
            return self.execute_complete(
                context, {**event, "repair_run": False, "errors": extract_failed_task_errors(self._hook, run, state)}
            )
        self.defer(
            trigger=DatabricksRunTrigger(
                run_id=self.run_id,
                databricks_conn_id=self.databricks_conn_id,
                polling_period_seconds=self.polling_period_seconds,
                retry_limit=self.databricks_retry_limit,
                retry_delay=self.databricks_retry_delay,
                retry_args=self.databricks_retry_args,
                run_page_url=run_page_url,
            ),
            method_name="execute_complete",
        )

    def _get_hook(self, caller: str) -> LoadRunHook:
        return LoadRunHook(
            self.databricks_conn_id,
            retry_limit=self.databricks_retry_limit,
            retry_delay=self.databricks_retry_delay,
            retry_args=self.databricks_retry_args,
            caller=caller,
        )

    def _submit_or_reconnect(self, context, payload: dict[str, Any]) -> int:
        """Submit the run; or, with ``durable``, reconnect to the run an earlier try of this task submitted
        while that run is still working (a worker lost, a trigger that failed), instead of a second run.

        The provider's ``durable`` covers only its non-deferrable path; this is the same for a deferred run.
        """
        store = context.get("task_state_store") if self.durable else None
        previous = store.get(self.external_id_key) if store is not None else None
        if previous and self._hook.reconnectable(int(previous)):
            self.log.info("%s: reconnecting to Databricks run %s of an earlier try", self.control_key, previous)
            return int(previous)
        run_id = self._hook.submit_run(payload)
        if store is not None:
            store.set(self.external_id_key, run_id)
        return run_id

    def execute_complete(self, context, event: dict):
        try:
            validate_trigger_event(event)
            state = RunState.from_json(event["run_state"])
            page = event["run_page_url"]
            if not state.is_successful:
                raise AirflowException(
                    f"the Databricks run {event['run_id']} ended {state.life_cycle_state} {state.result_state or ''}"
                    f": {state.state_message or 'no message'}; task errors: {event['errors'] or 'none'}. "
                    f"Its log is on the run page {page}; fix the cause, then clear this task"
                )
            result = _last_json_line(self._hook.load_output(event["run_id"], page), page)
            self.finish(context, result.get("summary", {}))
        except BaseException as exc:
            self.failed(context, exc)
            raise
        return summary_for_xcom(result)


def _last_json_line(output: TaskOutput, run_page_url: str) -> dict[str, Any]:
    """The job's summary: the last line of its logs that is a JSON object with ``summary`` or ``chunks``
    (the job prints exactly one; Spark and the job's own logging may write other lines around it)."""
    for line in reversed(output.logs.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            result = json.loads(line)
        except ValueError:
            continue
        if isinstance(result, dict) and ("summary" in result or "chunks" in result):
            return result
    cut = " (the logs were truncated to their last 5 MB)" if output.logs_truncated else ""
    raise AirflowFailException(
        f"the Databricks run succeeded but printed no JSON summary{cut}; its output ended with "
        f"{output.logs[-500:]!r}. See the run page {run_page_url}: check the table, then clear this task"
    )
