"""The Databricks Jobs API as a load uses it: one-time runs of one ``spark_python_task``, read back by task.

In the Jobs API 2.1 and later every run is a multi-task run: ``runs/submit`` takes ``tasks``, and
``runs/get-output`` refuses the top-level run id that ``runs/submit`` returns ("Retrieving the output of
runs with multiple tasks is not supported"), even for one task. The output is read from the task run
(``runs/get`` -> ``tasks[].run_id``): for a ``spark_python_task`` its ``logs`` hold the last 5 MB of
the job's stdout and stderr.

Not named ``databricks.py``: Airflow loads every file of the plugins folder as a top-level module named
after the file, and ``databricks`` would shadow the ``databricks`` namespace (``databricks.sql``,
``databricks.sdk``) in every Airflow process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.providers.databricks.exceptions import DatabricksApiError
from airflow.providers.databricks.hooks.databricks import (
    GET_RUN_ENDPOINT,
    OUTPUT_RUNS_JOB_ENDPOINT,
    DatabricksHook,
)
from airflow.sdk.exceptions import AirflowException

TASK_KEY = "dataloader"
# Life cycle states in which a run still does (or will do) its work: a retry may reconnect to it.
# TERMINATING is not one: the task has finished and only its cluster is being cleaned up.
RECONNECTABLE_STATES = frozenset({"QUEUED", "PENDING", "RUNNING", "BLOCKED", "WAITING_FOR_RETRY"})


class RunOutputError(Exception):
    """The output of a run could not be read; the message names the run page and what to do."""


@dataclass(frozen=True)
class TaskRun:
    """The run of the load's task inside a submitted run."""

    run_id: int
    task_key: str
    life_cycle_state: str
    result_state: str | None
    run_page_url: str | None

    @classmethod
    def latest(cls, run: Mapping[str, Any]) -> TaskRun | None:
        """The last attempt of the run's (only) task, None when the run lists no task."""
        tasks = sorted(run.get("tasks") or [], key=lambda t: (t.get("attempt_number", 0), t.get("start_time", 0)))
        if not tasks:
            return None
        task, state = tasks[-1], tasks[-1].get("state") or {}
        return cls(
            run_id=int(task["run_id"]),
            task_key=task.get("task_key", ""),
            life_cycle_state=state.get("life_cycle_state", ""),
            result_state=state.get("result_state"),
            run_page_url=task.get("run_page_url"),
        )


@dataclass(frozen=True)
class TaskOutput:
    """What ``runs/get-output`` gives for a task run of a ``spark_python_task``."""

    logs: str
    logs_truncated: bool
    error: str | None

    @classmethod
    def from_api(cls, output: Mapping[str, Any]) -> TaskOutput:
        return cls(output.get("logs") or "", bool(output.get("logs_truncated")), output.get("error"))


def submit_payload(
    *, run_name: str, cluster: Mapping[str, Any], python_file: str, parameters: Sequence[str]
) -> dict[str, Any]:
    """The runs/submit body of one load: one task, its cluster spec and the job entrypoint with its arguments."""
    return {
        "run_name": run_name[:100],
        "tasks": [
            {
                "task_key": TASK_KEY,
                **cluster,
                "spark_python_task": {"python_file": python_file, "parameters": list(parameters)},
            }
        ],
    }


class LoadRunHook(DatabricksHook):
    """:class:`DatabricksHook` with the calls a load adds: its task run, that run's output, reconnection.

    :param databricks_conn_id: the Databricks connection.
    """

    def task_run(self, run_id: int) -> TaskRun | None:
        """The load's task run in the submitted run ``run_id`` (``runs/get``)."""
        return TaskRun.latest(self._do_api_call(GET_RUN_ENDPOINT, {"run_id": run_id}))

    def task_output(self, task_run_id: int) -> TaskOutput:
        """The output of one task run (``runs/get-output``; a top-level run id is refused by Databricks)."""
        return TaskOutput.from_api(self._do_api_call(OUTPUT_RUNS_JOB_ENDPOINT, {"run_id": task_run_id}))

    def load_output(self, run_id: int, run_page_url: str | None) -> TaskOutput:
        """The output of the submitted run ``run_id``, read from its task run."""
        page = run_page_url or f"run {run_id}"
        try:
            task = self.task_run(run_id)
            if task is None:
                raise RunOutputError(f"the Databricks run lists no task run: {page}")
            return self.task_output(task.run_id)
        except AirflowException as exc:  # an error answer (DatabricksApiError), or retries exhausted
            raise RunOutputError(
                f"the Databricks run finished but its output could not be read ({exc}); the load's result is "
                f"in the task's log on the run page {page}: check the table, then clear this task to load again"
            ) from exc

    def reconnectable(self, run_id: int) -> bool:
        """Whether a run submitted by an earlier try is still doing its work (a retry may wait for it)."""
        try:
            state = self._do_api_call(GET_RUN_ENDPOINT, {"run_id": run_id}).get("state") or {}
        except DatabricksApiError as exc:
            if exc.http_status_code in (400, 404):  # gone (runs are kept 60 days), or never existed here
                return False
            raise
        return state.get("life_cycle_state") in RECONNECTABLE_STATES
