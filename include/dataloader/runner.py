"""One table's load with its lifecycle in the control database: queue, start, load, succeed or fail.

Used by ``dataloader run``; the transitions are :mod:`include.control.lifecycle`'s, as in the Airflow operators.
"""

from __future__ import annotations

import logging
from typing import Any

from include.control.lifecycle import Lifecycle, RowBusy, RowInactive
from include.control.repository import ControlRepository
from include.dataloader.engine import Engine
from include.dataloader.job import control_row, execute
from include.dataloader.redact import describe
from include.dbapi import lost_connection, said

log = logging.getLogger(__name__)


class LoadRefused(RuntimeError):
    pass


class ControlDbLost(RuntimeError):
    """The control database stopped answering before the run's result was recorded."""


def run(
    repo: ControlRepository,
    control_key: str,
    run_id: str,
    engine: Engine,
    *,
    airflow_run_url: str | None = None,
) -> dict[str, Any]:
    """Load one table now, as run ``run_id``; returns the summary. Refused while another run holds the row
    (a shell cannot tell whether an Airflow run is still live, so a Queued or In Progress row is held)."""
    life = Lifecycle(repo, control_key, run_id, airflow_run_url=airflow_run_url)
    try:
        life.queue()
        current = life.start()
    except (RowBusy, RowInactive) as exc:
        raise LoadRefused(f"{control_key} was not queued: {exc}") from None
    log.info("%s: run %s started", control_key, run_id)
    try:
        row = control_row(current)
        dbconfig = repo.get_dbconfig(row.db_config_key)
        summary = execute(engine, row, dbconfig, watermark=current["incremental_value"])["summary"]
    except Exception as exc:
        error = describe(exc)
        log.error("%s: run %s failed: %s", control_key, run_id, error)
        _record(lambda: life.fail(error), control_key, run_id, f"failed ({error})")
        raise
    target = f"{row.destination_catalog}.{row.destination_schema}.{row.destination_table_name}"
    _record(lambda: life.succeed(summary), control_key, run_id, f"loaded {target}")
    log.info(
        "%s: run %s succeeded, %d rows",
        control_key,
        run_id,
        summary["inserted"] + summary["updated"] + summary["deleted"],
    )
    return summary


def _record(transition, control_key: str, run_id: str, what: str) -> None:
    """A lifecycle transition at the end of a run; a lost control database is said with what the run did
    and what becomes of the row (its holder, this process, is gone once it exits: the next run ends it)."""
    try:
        transition()
    except Exception as exc:
        if not lost_connection(exc):
            raise
        raise ControlDbLost(
            f"{control_key}: run {run_id} {what}, but the control database could not be reached to record it "
            f"({said(exc)}); the row stays In Progress for this run until the next `dataloader run "
            f"{control_key}`, which ends it and loads again"
        ) from exc
