"""The CLI's run of a comparison: the steps of include/sentinel/steps.py, in one process, over the output
folder, which is also the session (``comparison_state/session_<id>.json`` tracks each table's status).

Files under the output folder: ``sync_target_<TABLE>_<timestamp>_<id8>.sql`` (a table with differences),
``comparison_summary_<TABLE>_<timestamp>.txt``, ``comparison_report_<timestamp>.csv`` (one row per table),
``audit_<session>.jsonl``, and the session's checkpoints (plans and chunk results).
"""

from __future__ import annotations

import logging
from typing import Any

from include.redact import describe, redact
from include.sentinel.audit import one_line
from include.sentinel.compare import CompareError
from include.sentinel.config import CompareConfig, ConfigError
from include.sentinel.connect import validate
from include.sentinel.session import SessionNotFound, SessionStore, TableProgress
from include.sentinel.steps import (
    REPORT_FIELDS,
    SessionLayout,
    compare_batch,
    finish_table,
    plan_tables,
    select_tables,
    write_report,
)

log = logging.getLogger(__name__)


def error_text(exc: BaseException, secrets: list[str] = ()) -> str:
    """One line, secrets redacted; our own refusals (which name the table, the field and the fix) as they
    are, other errors (a driver's) with their type."""
    text = str(exc) if isinstance(exc, ConfigError | CompareError | SessionNotFound) else describe(exc)
    return one_line(redact(text, *secrets))


def run_comparison(
    config: CompareConfig,
    *,
    tables: list[str] | None = None,
    allow_deletes: bool = False,
    reverify_wait: float = 0,
    resume: str | None = None,
    retry_failed: bool = False,
    config_name: str = "",
) -> list[dict[str, Any]]:
    """Compare the tables (all, or ``tables``) in a new session, or resume session ``resume``: its
    completed tables are skipped and, in the others, its checkpointed chunks. Refuses (ConfigError) before
    anything is written when the config cannot run."""
    validate(config)
    selected = select_tables(config, tables)
    store = SessionStore(config.output_dir)
    if resume:
        session = store.load(resume)
        log.info("Resumed session: %s\n%s", session.session_id, session.summary())
    else:
        session = store.new(config_name, [s.label for s in selected])
        log.info("Created new session: %s", session.session_id)
    layout = SessionLayout(config.output_dir, session.session_id)
    rows = []
    for spec in selected:
        progress = session.table_progress.setdefault(spec.label, TableProgress())
        if progress.status == "completed" or (retry_failed and progress.status != "failed"):
            log.info("Skipping %s table: %s", progress.status, spec.label)
            continue
        row: dict[str, Any] = {"table": spec.label}
        try:
            [item] = plan_tables(config, layout, tables=[spec.label], max_items=1)
            progress.status, progress.error, progress.total_chunks = "in_progress", None, len(item["chunks"])
            store.save(session)

            def checkpoint(result, done, total, progress=progress):
                progress.completed_chunks = done
                store.save(session)

            compare_batch(config, layout, item, on_chunk=checkpoint)
            progress.completed_chunks = progress.total_chunks
            row |= finish_table(config, layout, spec.label, allow_deletes=allow_deletes, reverify_wait=reverify_wait)
            progress.status = "completed"
        except Exception as exc:
            row |= {"status": "failed", "error": error_text(exc, config.secrets())}
            progress.status, progress.error = "failed", row["error"]
        store.save(session)
        rows.append(row | {"session": session.session_id})
    counts = session.counts()
    session.status = (
        "completed"
        if counts["completed"] == len(session.table_progress)
        else ("failed" if counts["failed"] else "in_progress")
    )
    store.save(session)
    write_report(layout, rows)
    return rows


__all__ = ["REPORT_FIELDS", "error_text", "run_comparison"]
