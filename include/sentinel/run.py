"""One comparison run over the configured tables, with its files under the output folder:

- ``sync_target_<TABLE>_<timestamp>_<id>.sql``: the sync SQL of a table with differences;
- ``comparison_summary_<TABLE>_<timestamp>.txt``: what was compared and found;
- ``comparison_report_<timestamp>.csv``: one row per table (counts, chunks, duration, status);
- ``audit_<session>.jsonl``: COMPARISON_START, each CHUNK, COMPARISON_END, as JSON lines.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.sentinel.compare import TableComparator, TableComparison
from include.sentinel.config import CompareConfig, ConfigError, Database
from include.sentinel.session import SessionStore, TableProgress
from include.sentinel.sync import sync_sql
from include.sentinel.verify import Verified, reverify

log = logging.getLogger(__name__)
REPORT_FIELDS = (
    "table",
    "status",
    "source_rows",
    "target_rows",
    "matching",
    "missing_in_target",
    "missing_in_source",
    "different",
    "in_flight",
    "chunks",
    "chunks_differing",
    "seconds",
    "sql_file",
    "error",
)


def write_atomically(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
    return path


def table_summary(comparison: TableComparison, verified: Verified) -> dict[str, Any]:
    """One table's result: a row of the CSV report, the summary file, the task's XCom."""
    return {
        "status": "completed",
        "source_rows": sum(c.source_rows for c in comparison.chunks),
        "target_rows": sum(c.target_rows for c in comparison.chunks),
        "matching": comparison.matching,
        "missing_in_target": len(comparison.keys("missing_in_target")),
        "missing_in_source": len(comparison.keys("missing_in_source")),
        "different": len(comparison.keys("different")),
        "in_flight": len(verified.in_flight),
        "chunks": len(comparison.chunks),
        "chunks_differing": sum(not c.equal for c in comparison.chunks),
        "seconds": round(comparison.seconds, 3),
    }


def summary_text(row: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in row.items()) + "\n"


def report_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS)
    writer.writeheader()
    writer.writerows({k: r.get(k, "") for k in REPORT_FIELDS} for r in rows)
    return out.getvalue()


def show_progress(table: str, done: int, total: int) -> None:
    """A progress bar on a terminal; the seeds' log lines otherwise."""
    if sys.stderr.isatty():
        filled = int(30 * done / max(total, 1))
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r{table:<30} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} chunks{end}")
        sys.stderr.flush()
    else:
        log.info("%s: processed chunk %d/%d", table, done, total)


def connector(database: Database):
    """Opens connections to one side, in autocommit: psycopg (PostgreSQL), oracledb in thin mode (Oracle, no
    client install), pymssql (SQL Server), clickhouse-connect (ClickHouse), snowflake-connector-python
    (Snowflake: not in requirements.txt, its protobuf pin clashes with Airflow's; install it beside)."""
    if database.db_type == "postgresql":
        url = database.url()
        return lambda: psycopg.connect(url, autocommit=True)
    s = database.settings()
    if database.db_type == "oracle":
        import oracledb

        dsn = f"{s['host']}:{s['port']}/{s['database']}"
        return lambda: oracledb.connect(user=s["username"], password=s["password"], dsn=dsn, **database.extra)
    if database.db_type == "sqlserver":
        import pymssql

        return lambda: pymssql.connect(
            server=s["host"],
            port=str(s["port"]),
            user=s["username"],
            password=s["password"],
            database=s["database"],
            autocommit=True,
            **database.extra,
        )
    if database.db_type == "clickhouse":
        from clickhouse_connect import dbapi

        return lambda: dbapi.connect(
            host=s["host"],
            port=s["port"],
            username=s["username"] or "default",
            password=s["password"] or "",
            database=s["database"],
            **database.extra,
        )
    try:
        import snowflake.connector
    except ImportError:
        raise ConfigError("db_type snowflake: pip install snowflake-connector-python (see the README)") from None
    return lambda: snowflake.connector.connect(
        account=s["host"],
        user=s["username"],
        password=s["password"],
        database=s["database"],
        autocommit=True,
        **database.extra,
    )


class Audit:
    """Audit events as JSON lines, and in the control database's ``sentinel_audit`` table when given one."""

    def __init__(self, path: Path, session_id: str, *, db_url: str | None = None):
        self.path, self.session_id, self.db_url = path, session_id, db_url
        path.parent.mkdir(parents=True, exist_ok=True)

    def event(self, event: str, **fields: Any) -> None:
        record = {"time": datetime.now(UTC).isoformat(), "session": self.session_id, "event": event, **fields}
        with self.path.open("a") as out:
            out.write(json.dumps(record, default=str) + "\n")
        if self.db_url:
            with psycopg.connect(self.db_url) as conn:
                conn.execute(
                    "INSERT INTO sentinel_audit (session_id, run_id, table_name, event, details) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (
                        self.session_id,
                        fields.get("run_id"),
                        fields.get("table"),
                        event,
                        Jsonb(json.loads(json.dumps(fields, default=str))),
                    ),
                )
        if event != "CHUNK":
            log.info("%s %s", event, fields)


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
    completed tables are skipped and, in the others, its checkpointed chunks."""
    store = SessionStore(config.output_dir)
    selected = [s for s in config.tables if not tables or s.label in tables or s.table_name in tables]
    if resume:
        session = store.load(resume)
        log.info("Resumed session: %s\n%s", session.session_id, session.summary())
    else:
        session = store.new(config_name, [s.label for s in selected])
        log.info("Created new session: %s", session.session_id)
    session_id = session.session_id
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%d_%H%M%S")
    out = config.output_dir
    audit_db = os.environ.get(config.audit_db_url_env) if config.audit_db_url_env else None
    if config.audit_db_url_env and not audit_db:
        raise ConfigError(f"options.audit_db_url_env: set the environment variable {config.audit_db_url_env}")
    audit = Audit(out / f"audit_{session_id}.jsonl", session_id, db_url=audit_db)
    if config.source.db_type != config.target.db_type:
        raise ConfigError(
            f"source_database is {config.source.db_type} but target_database is {config.target.db_type}: "
            "both sides must be the same kind of database (the canonical rows are compared within one dialect)"
        )
    source, target = connector(config.source), connector(config.target)
    rows = []
    for spec in selected:
        progress = session.table_progress.setdefault(spec.label, TableProgress())
        if progress.status == "completed" or (retry_failed and progress.status != "failed"):
            log.info("Skipping %s table: %s", progress.status, spec.label)
            continue
        run_id = str(uuid.uuid4())
        audit.event("COMPARISON_START", run_id=run_id, table=spec.label)
        row: dict[str, Any] = {"table": spec.label}
        try:
            comparator = TableComparator(
                spec,
                source,
                target,
                dialect=config.dialect(),
                max_threads=config.max_threads,
            )
            chunks = store.plan(session, spec.label)
            if chunks is None:
                chunks = comparator.plan()
                store.set_plan(session, spec.label, chunks)
            done = store.chunks_done(session, spec.label)
            if done:
                log.info("Found %d existing chunk checkpoints for %s", len(done), spec.label)
            progress.status, progress.error = "in_progress", None

            def checkpoint(chunk, label=spec.label, progress=progress, run_id=run_id):
                store.save_chunk(session, label, chunk)
                progress.completed_chunks += 1
                store.save(session)
                audit.event("CHUNK", run_id=run_id, table=label, chunk=chunk.summary())
                show_progress(label, progress.completed_chunks, progress.total_chunks)

            progress.completed_chunks = len(done)
            comparison = comparator.compare(chunks, done=done, on_chunk=checkpoint)
            verified = reverify(comparator, comparison, wait_seconds=reverify_wait)
            row |= table_summary(comparison, verified)
            if verified.has_changes:
                name = spec.label.replace(".", "_").upper()
                sql = sync_sql(
                    comparator,
                    comparison,
                    verified,
                    session_id=session_id,
                    generated_at=started,
                    allow_deletes=allow_deletes,
                )
                row["sql_file"] = str(write_atomically(out / f"sync_target_{name}_{stamp}_{run_id[:8]}.sql", sql))
            write_atomically(
                out / f"comparison_summary_{spec.label.replace('.', '_').upper()}_{stamp}.txt",
                summary_text(row),
            )
            audit.event("COMPARISON_END", run_id=run_id, table=spec.label, results=row)
            progress.status = "completed"
        except Exception as exc:
            row |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            progress.status, progress.error = "failed", row["error"]
            audit.event("COMPARISON_FAILED", run_id=run_id, table=spec.label, error=row["error"])
        store.save(session)
        rows.append(row | {"session": session_id})
    counts = session.counts()
    session.status = (
        "completed"
        if counts["completed"] == len(session.table_progress)
        else ("failed" if counts["failed"] else "in_progress")
    )
    store.save(session)
    write_atomically(out / f"comparison_report_{stamp}.csv", report_csv(rows))
    return rows
