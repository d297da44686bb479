"""Airflow is the source of truth for runs: a row that says Queued or In Progress while its Airflow run
has ended (or never existed) is corrected to Failed, which table_control_history records.

Runs started from a shell (``dataloader run``, run ids ``cli__...``) are not Airflow's: they are ended
only when their owner is provably gone: on the owner's own host when its process no longer runs, from
anywhere when it has sent no heartbeat for ``DATALOADER_CLI_SILENT_MINUTES`` (see ``run_owner``)."""

from __future__ import annotations

import logging

from include.control.repository import ControlRepository
from include.dataloader import run_owner
from include.dataloader.monitors.ports import AirflowRuns

log = logging.getLogger(__name__)
ENDED = ("success", "failed")


def reconcile(repo: ControlRepository, airflow: AirflowRuns) -> list[dict]:
    corrections = []
    for row in repo.in_flight():
        key, run_id, status = row["control_key"], row["current_run_id"], row["last_status"]
        if (run_id or "").startswith(run_owner.CLI_RUN_PREFIX):
            ended, verdict = run_owner.end_if_gone(repo, key, run_id, by="the reconciler")
            if ended is not None:
                corrections.append({"control_key": key, "run_id": run_id, "was": status, "cli_run": verdict.reason})
            continue
        state = airflow.run_state(key, run_id) if run_id else None
        if state not in (None, *ENDED):
            continue  # queued or running in Airflow too: consistent
        what = f"Airflow run {run_id} {'does not exist' if state is None else f'ended {state}'}"
        message = f"Reconciled: the row said {status} but {what}; the load's result was not recorded"
        if repo.fail(key, run_id, message) is not None:
            log.warning("%s: %s", key, message)
            corrections.append({"control_key": key, "run_id": run_id, "was": status, "airflow_state": state})
    return corrections
