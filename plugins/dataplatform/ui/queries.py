"""The page's reads of the control database: filtered, limited and ordered on indexed columns.

Values are always bound; the optional filters are fixed SQL fragments chosen by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from include.control.db import connect
from include.dataloader.monitors.analysis import MARKERS

NEVER_LOADED = "Never loaded"  # the status filter's name for rows without a last_status
STATUSES = ("Queued", "In Progress", "Succeeded", "Failed", NEVER_LOADED)
PAGE_SIZE = 50
RECENT = 20  # runs and history changes shown on a row's page

_ROW_COLUMNS = sql.SQL(
    """c.control_key, c.db_config_key, d.db_type, c.load_strategy, c.is_active, c.last_status,
       c.last_status_date_time, c.incremental_value, c.next_load_date_time, c.last_load_date_time,
       c.retry_count, c.current_run_id, c.airflow_run_url, c.databricks_run_url, c.rows_processed,
       left(c.last_status_message, 300) AS last_status_message"""
)
_FILTERS = {
    "status": sql.SQL("c.last_status = %(status)s"),
    "source": sql.SQL("c.db_config_key = %(source)s"),
    "strategy": sql.SQL("c.load_strategy = %(strategy)s"),
}


@dataclass(frozen=True)
class RowFilter:
    status: str | None = None
    source: str | None = None
    strategy: str | None = None
    page: int = 1

    def where(self) -> tuple[sql.Composable, dict[str, Any]]:
        parts, params = [], {}
        for name, fragment in _FILTERS.items():
            value = getattr(self, name)
            if not value:
                continue
            if name == "status" and value == NEVER_LOADED:
                parts.append(sql.SQL("c.last_status IS NULL"))
                continue
            parts.append(fragment)
            params[name] = value
        return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")), params


def control_rows(url: str, flt: RowFilter, *, page_size: int = PAGE_SIZE) -> tuple[list[dict], int]:
    """One page of control rows (ordered by key) and how many rows match the filter."""
    where, params = flt.where()
    query = sql.SQL(
        """SELECT {columns} FROM table_control c JOIN table_control_dbconfig d USING (db_config_key)
           WHERE {where} ORDER BY c.control_key LIMIT %(limit)s OFFSET %(offset)s"""
    ).format(columns=_ROW_COLUMNS, where=where)
    count = sql.SQL("SELECT count(*) AS n FROM table_control c WHERE {where}").format(where=where)
    paging = {"limit": page_size, "offset": (max(flt.page, 1) - 1) * page_size}
    with connect(url) as conn:
        rows = conn.execute(query, {**params, **paging}).fetchall()
        total = conn.execute(count, params).fetchone()["n"]
    return rows, total


def sources(url: str) -> list[str]:
    with connect(url) as conn:
        return [r["db_config_key"] for r in conn.execute("SELECT db_config_key FROM table_control_dbconfig ORDER BY 1")]


def dbconfigs(url: str) -> list[dict]:
    with connect(url) as conn:
        return conn.execute("SELECT * FROM table_control_dbconfig ORDER BY db_config_key").fetchall()


def recent_runs(url: str, control_key: str, limit: int = RECENT) -> list[dict]:
    """The row's latest runs (the index on control_key, id, read backwards)."""
    with connect(url) as conn:
        return conn.execute(
            """SELECT run_id, load_status, load_queued_time, load_start_time, load_end_time, rows_processed,
                      run_host, heartbeat_at, left(error_message, 500) AS error_message
                 FROM historical_metadata WHERE control_key = %(k)s ORDER BY id DESC LIMIT %(limit)s""",
            {"k": control_key, "limit": limit},
        ).fetchall()


def recent_changes(url: str, control_key: str, limit: int = RECENT) -> list[dict]:
    """The row's latest history entries (the index on control_key, changed_at, read backwards)."""
    with connect(url) as conn:
        return conn.execute(
            """SELECT changed_at, change_type, change_source, old_values, new_values
                 FROM table_control_history WHERE control_key = %(k)s
                ORDER BY changed_at DESC LIMIT %(limit)s""",
            {"k": control_key, "limit": limit},
        ).fetchall()


def latest_analysis(url: str, control_key: str) -> dict | None:
    """The last retry analysis recorded for the row: the change that put an analysis marker in its message."""
    with connect(url) as conn:
        return conn.execute(
            """SELECT changed_at, change_source, new_values->>'last_status_message' AS message
                 FROM table_control_history
                WHERE control_key = %(k)s AND new_values->>'last_status_message' LIKE ANY(%(markers)s)
                ORDER BY changed_at DESC LIMIT 1""",
            {"k": control_key, "markers": [m + "%" for m in MARKERS]},
        ).fetchone()


def sentinel_results(url: str, limit: int = 200) -> list[dict]:
    """The latest table results of DB Sentinel runs recorded in ``sentinel_audit`` (newest first)."""
    with connect(url) as conn:
        return conn.execute(
            """SELECT session_id, table_name, event, event_time, details FROM sentinel_audit
                WHERE event IN ('COMPARISON_END', 'COMPARISON_FAILED') ORDER BY id DESC LIMIT %(limit)s""",
            {"limit": limit},
        ).fetchall()


def as_text(values: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((values or {}).items()))
