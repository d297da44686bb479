"""Loads stuck in the queue, and loads running too long: cancelled, and their Airflow and Databricks
runs stopped. The row is claimed first (one guarded statement), so two monitors never act twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from include.control.repository import ControlRepository
from include.dataloader.monitors.ports import AirflowRuns, DatabricksRuns, databricks_run_id

log = logging.getLogger(__name__)

STUCK_IN_QUEUE = "Cancelled - stuck in queue"
EXCEEDED_TIMEOUT = "Cancelled - exceeded timeout"


def cancel_long_queued(repo: ControlRepository, airflow: AirflowRuns, *, threshold: timedelta) -> list[dict]:
    """Rows Queued for longer than ``threshold`` become Failed; their queued Airflow runs are failed."""
    results = []
    for row in repo.cancel_stuck("Queued", threshold, STUCK_IN_QUEUE):
        failed = airflow.fail_run(row["control_key"], row["current_run_id"])
        log.warning(
            "%s: stuck in queue since %s; run %s failed: %s",
            row["control_key"],
            row["last_status_date_time"],
            row["current_run_id"],
            failed,
        )
        results.append(
            {"control_key": row["control_key"], "run_id": row["current_run_id"], "airflow_run_failed": failed}
        )
    return results


def cancel_long_running(
    repo: ControlRepository, airflow: AirflowRuns, databricks: DatabricksRuns | None, *, threshold: timedelta
) -> list[dict]:
    """Rows In Progress longer than their limit (``max_running_minutes`` or ``threshold``) become Failed;
    their Airflow runs are failed and their Databricks runs cancelled."""
    results = []
    for row in repo.cancel_stuck("In Progress", threshold, EXCEEDED_TIMEOUT):
        key, run_id = row["control_key"], row["current_run_id"]
        failed = airflow.fail_run(key, run_id)
        dbx_run = databricks_run_id(row["databricks_run_url"])
        if dbx_run is not None and databricks is not None:
            databricks.cancel_run(dbx_run)
        log.warning(
            "%s: running since %s; run %s failed: %s; Databricks run %s cancelled",
            key,
            row["last_load_date_time"],
            run_id,
            failed,
            dbx_run,
        )
        results.append({"control_key": key, "run_id": run_id, "airflow_run_failed": failed, "databricks_run": dbx_run})
    return results
