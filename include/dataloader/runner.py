"""One table's load with its lifecycle in the control database: queue, start, load, succeed or fail.

Used by ``dataloader run`` and, in Airflow, by the load operator's local execution.
"""

from __future__ import annotations

import logging
from typing import Any

from include.control.repository import ControlRepository
from include.dataloader.engine import Engine
from include.dataloader.job import control_row, execute
from include.dataloader.redact import describe

log = logging.getLogger(__name__)


class LoadRefused(RuntimeError):
    pass


def run(
    repo: ControlRepository,
    control_key: str,
    run_id: str,
    engine: Engine,
    *,
    airflow_run_url: str | None = None,
) -> dict[str, Any]:
    """Load one table now, as run ``run_id``; returns the summary. The row must not be queued or running."""
    current = repo.require(control_key)
    if repo.queue(control_key, run_id) is None:
        raise LoadRefused(
            f"{control_key} was not queued: it is {'inactive' if not current['is_active'] else current['last_status']}"
            f" (run {current['current_run_id']}); wait for that run, or cancel it"
        )
    repo.start(control_key, run_id, airflow_run_url=airflow_run_url)
    log.info("%s: run %s started", control_key, run_id)
    try:
        row = control_row(current)
        dbconfig = repo.get_dbconfig(row.db_config_key)
        summary = execute(engine, row, dbconfig, watermark=current["incremental_value"])["summary"]
    except Exception as exc:
        repo.fail(control_key, run_id, describe(exc))
        log.error("%s: run %s failed: %s", control_key, run_id, describe(exc))
        raise
    processed = summary["inserted"] + summary["updated"] + summary["deleted"]
    repo.succeed(
        control_key,
        run_id,
        rows_processed=processed,
        watermark=summary["watermark"],
        message=summary["message"],
        switch_to_strategy=summary["switch_to_strategy"],
    )
    log.info("%s: run %s succeeded, %d rows", control_key, run_id, processed)
    return summary
