"""Every read and state transition of the control tables.

Each transition is one SQL statement: a guarded UPDATE of ``table_control`` (the WHERE clause is the
guard) with the matching ``historical_metadata`` write in a data-modifying CTE, so both change together
or not at all. A transition whose guard does not hold returns ``None`` and changes nothing. Under READ
COMMITTED, two workers racing on one row serialise on its row lock and the loser re-checks the guard
against the winner's committed row, so exactly one of them wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg
from croniter import croniter
from psycopg import sql
from psycopg.types.json import Jsonb

from include.control.db import connect
from include.control.model import (
    CONFIG_FIELDS,
    ControlRow,
    FieldProblem,
    InvalidControlRow,
    InvalidDbConfig,
    dbconfig_problems,
)

Row = dict[str, Any]

# A change to any of these makes the recorded count of target rows at the watermark meaningless.
_WATERMARK_SCOPE = (
    "incremental_value",
    "incremental_column",
    "incremental_type",
    "source_schema",
    "source_table_name",
    "destination_catalog",
    "destination_schema",
    "destination_table_name",
)
MAX_MESSAGE_CHARS = 8000  # error texts from drivers can be huge; keep the head, which names the cause


class ControlRowNotFound(LookupError):
    def __init__(self, control_key: str):
        self.control_key = control_key
        super().__init__(
            f"no table_control row with control_key {control_key!r}; "
            "see `dataloader tables list` for the configured keys"
        )


def next_load_after(cron: str, after: datetime) -> datetime:
    """The first time the row's cron fires after ``after``."""
    return croniter(cron, after).get_next(datetime)


def _clip(message: str | None) -> str | None:
    if message is None or len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[:MAX_MESSAGE_CHARS] + f"... [{len(message) - MAX_MESSAGE_CHARS} more characters]"


class ControlRepository:
    """The control database, one short transaction per call.

    :param url: libpq URI of the control database.
    :param change_source: recorded in ``table_control_history`` for every change made through this object.
    """

    def __init__(self, url: str, *, change_source: str = "dataloader", settings: Mapping[str, str] | None = None):
        self.url = url
        self.change_source = change_source
        self.settings = dict(settings or {})  # further dataloader.* session settings (a CLI run's owner)

    def _connect(self) -> psycopg.Connection:
        return connect(self.url, change_source=self.change_source, settings=self.settings)

    def _one(self, query: str | sql.Composable, params: Mapping[str, Any] | None = None) -> Row | None:
        with self._connect() as conn:
            return conn.execute(query, params).fetchone()

    def _all(self, query: str | sql.Composable, params: Mapping[str, Any] | None = None) -> list[Row]:
        with self._connect() as conn:
            return conn.execute(query, params).fetchall()

    # -- database configs -------------------------------------------------------------------------

    def upsert_dbconfig(
        self,
        db_config_key: str,
        db_type: str,
        db_config_value: Mapping[str, Any],
        db_kv_scope: str | None = None,
    ) -> Row:
        if problems := dbconfig_problems(db_config_key, db_type, db_config_value):
            raise InvalidDbConfig(db_config_key, problems)
        return self._one(
            """
            INSERT INTO table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope)
            VALUES (%(key)s, %(type)s, %(value)s, %(scope)s)
            ON CONFLICT (db_config_key) DO UPDATE
               SET db_type = EXCLUDED.db_type, db_config_value = EXCLUDED.db_config_value,
                   db_kv_scope = EXCLUDED.db_kv_scope
            RETURNING *
            """,
            {
                "key": db_config_key,
                "type": db_type,
                "value": Jsonb(dict(db_config_value)),
                "scope": db_kv_scope,
            },
        )

    def get_dbconfig(self, db_config_key: str) -> Row | None:
        return self._one("SELECT * FROM table_control_dbconfig WHERE db_config_key = %(k)s", {"k": db_config_key})

    def list_dbconfigs(self) -> list[Row]:
        return self._all("SELECT * FROM table_control_dbconfig ORDER BY db_config_key")

    # -- control rows -----------------------------------------------------------------------------

    def get(self, control_key: str) -> Row | None:
        return self._one(
            """
            SELECT c.*, d.db_type FROM table_control c
            JOIN table_control_dbconfig d USING (db_config_key)
            WHERE c.control_key = %(k)s
            """,
            {"k": control_key},
        )

    def require(self, control_key: str) -> Row:
        row = self.get(control_key)
        if row is None:
            raise ControlRowNotFound(control_key)
        return row

    def list(self, *, active_only: bool = False) -> list[Row]:
        return self._all(
            """
            SELECT c.*, d.db_type FROM table_control c
            JOIN table_control_dbconfig d USING (db_config_key)
            WHERE c.is_active OR NOT %(active_only)s
            ORDER BY c.control_key
            """,
            {"active_only": active_only},
        )

    def add(self, row: ControlRow) -> Row:
        with self._connect() as conn:
            return self._insert(conn, row)

    def update(self, control_key: str, changes: Mapping[str, Any]) -> Row:
        """Change configurable fields of a row; the merged row is validated as a whole."""
        with self._connect() as conn:
            current = conn.execute(
                "SELECT * FROM table_control WHERE control_key = %(k)s FOR UPDATE", {"k": control_key}
            ).fetchone()
            if current is None:
                raise ControlRowNotFound(control_key)
            return self._update(conn, current, changes)

    def deactivate(self, control_key: str) -> Row:
        return self.update(control_key, {"is_active": False})

    def import_rows(
        self, rows: Iterable[ControlRow], dbconfigs: Iterable[Mapping[str, Any]] = ()
    ) -> tuple[list[str], list[str]]:
        """Insert new rows and update existing ones, all in one transaction: all or nothing."""
        added: list[str] = []
        updated: list[str] = []
        with self._connect() as conn:
            for cfg in dbconfigs:
                conn.execute(
                    """
                    INSERT INTO table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope)
                    VALUES (%(db_config_key)s, %(db_type)s, %(db_config_value)s, %(db_kv_scope)s)
                    ON CONFLICT (db_config_key) DO UPDATE
                       SET db_type = EXCLUDED.db_type, db_config_value = EXCLUDED.db_config_value,
                           db_kv_scope = EXCLUDED.db_kv_scope
                    """,
                    {**cfg, "db_config_value": Jsonb(dict(cfg.get("db_config_value") or {}))},
                )
            for row in rows:
                current = conn.execute(
                    "SELECT * FROM table_control WHERE control_key = %(k)s FOR UPDATE", {"k": row.control_key}
                ).fetchone()
                if current is None:
                    self._insert(conn, row)
                    added.append(row.control_key)
                else:
                    self._update(conn, current, row.as_columns())
                    updated.append(row.control_key)
        return added, updated

    def _insert(self, conn: psycopg.Connection, row: ControlRow) -> Row:
        self._check_references(conn, row)
        columns = row.as_columns()
        columns["next_load_date_time"] = next_load_after(row.cron, datetime.now().astimezone())
        query = sql.SQL("INSERT INTO table_control ({}) VALUES ({}) RETURNING *").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(map(sql.Placeholder, columns)),
        )
        try:
            with conn.transaction():
                return conn.execute(query, columns).fetchone()
        except psycopg.errors.UniqueViolation:
            raise InvalidControlRow(
                row.control_key,
                [FieldProblem("control_key", "already exists", "choose another key, or use `tables update`")],
            ) from None

    def _update(self, conn: psycopg.Connection, current: Row, changes: Mapping[str, Any]) -> Row:
        merged = {name: current[name] for name in CONFIG_FIELDS}
        merged.update(changes)
        row = ControlRow.from_mapping(merged)
        self._check_references(conn, row)
        columns = {k: v for k, v in row.as_columns().items() if k != "control_key"}
        if any(columns[k] != current[k] for k in _WATERMARK_SCOPE if k in columns):
            columns["watermark_rows"] = None  # counted for another watermark, cursor or table
        if row.cron != current["cron"]:
            columns["next_load_date_time"] = next_load_after(row.cron, datetime.now().astimezone())
        query = sql.SQL("UPDATE table_control SET {} WHERE control_key = %(control_key)s RETURNING *").format(
            sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in columns)
        )
        return conn.execute(query, {**columns, "control_key": row.control_key}).fetchone()

    @staticmethod
    def _check_references(conn: psycopg.Connection, row: ControlRow) -> None:
        found = conn.execute(
            "SELECT 1 FROM table_control_dbconfig WHERE db_config_key = %(k)s", {"k": row.db_config_key}
        ).fetchone()
        if found is None:
            known = [r["db_config_key"] for r in conn.execute("SELECT db_config_key FROM table_control_dbconfig")]
            raise InvalidControlRow(
                row.control_key,
                [
                    FieldProblem(
                        "db_config_key",
                        f"{row.db_config_key!r} is not in table_control_dbconfig",
                        f"use one of: {', '.join(sorted(known)) or '(none yet)'}, or add it under dbconfigs:",
                    )
                ],
            )

    # -- the load lifecycle -----------------------------------------------------------------------

    def ready(self, limit: int = 10) -> list[Row]:
        """Rows due for a load: active, next load time reached, not already queued or running."""
        return self._all(
            """
            SELECT * FROM table_control
            WHERE is_active AND next_load_date_time <= now()
              AND last_status IS DISTINCT FROM 'Queued' AND last_status IS DISTINCT FROM 'In Progress'
            ORDER BY next_load_date_time, control_key
            LIMIT %(limit)s
            """,
            {"limit": limit},
        )

    def queue(self, control_key: str, run_id: str, *, due_only: bool = False) -> Row | None:
        """Queue a load; ``None`` when the row is inactive, already queued or running (or not due)."""
        return self._one(
            """
            WITH q AS (
                UPDATE table_control
                   SET last_status = 'Queued', last_status_date_time = now(), last_status_message = NULL,
                       current_run_id = %(run_id)s, databricks_run_url = NULL
                 WHERE control_key = %(key)s AND is_active
                   AND last_status IS DISTINCT FROM 'Queued' AND last_status IS DISTINCT FROM 'In Progress'
                   AND (NOT %(due_only)s OR next_load_date_time <= now())
                RETURNING *
            ), h AS (
                INSERT INTO historical_metadata (control_key, run_id, load_queued_time, load_status)
                SELECT control_key, current_run_id, now(), 'Queued' FROM q
                ON CONFLICT (control_key, run_id) DO UPDATE
                   SET load_queued_time = now(), load_status = 'Queued', load_start_time = NULL,
                       load_end_time = NULL, rows_processed = NULL, error_message = NULL
            )
            SELECT * FROM q
            """,
            {"key": control_key, "run_id": run_id, "due_only": due_only},
        )

    def start(self, control_key: str, run_id: str, *, airflow_run_url: str | None = None) -> Row | None:
        """Queued → In Progress, for the run that queued the row."""
        return self._one(
            """
            WITH s AS (
                UPDATE table_control
                   SET last_status = 'In Progress', last_status_date_time = now(), last_load_date_time = now(),
                       airflow_run_url = coalesce(%(url)s, airflow_run_url)
                 WHERE control_key = %(key)s AND last_status = 'Queued' AND current_run_id = %(run_id)s
                RETURNING *
            ), h AS (
                UPDATE historical_metadata h SET load_status = 'In Progress', load_start_time = now()
                  FROM s WHERE h.control_key = s.control_key AND h.run_id = s.current_run_id
            )
            SELECT * FROM s
            """,
            {"key": control_key, "run_id": run_id, "url": airflow_run_url},
        )

    def claim(
        self,
        control_key: str,
        run_id: str,
        *,
        status: str,
        holder: str | None,
        holder_status: str | None,
        message: str | None = None,
        airflow_run_url: str | None = None,
        abandoned: str | None = None,
        keep_rows: bool = False,
    ) -> Row | None:
        """Take the row for ``run_id`` as ``status`` (Queued or In Progress), and (re)open the run's
        historical_metadata row.

        A compare-and-set: it acts only while the row is still held by ``holder`` with ``holder_status``, as
        the caller saw it, so two runs deciding at once cannot both win. A row held by another run must be
        active. ``abandoned``: the previous holder's run has ended without closing its historical row; that
        row becomes Failed with this reason. ``keep_rows``: the run's recorded row count stays (a step re-run
        alone after its run succeeded).
        """
        return self._one(
            """
            WITH c AS (
                UPDATE table_control
                   SET last_status = %(status)s, last_status_date_time = now(), last_status_message = %(msg)s,
                       last_load_date_time = CASE WHEN %(status)s = 'In Progress' THEN now()
                                                  ELSE last_load_date_time END,
                       databricks_run_url = CASE WHEN current_run_id = %(run_id)s AND %(status)s = 'In Progress'
                                                 THEN databricks_run_url END,
                       airflow_run_url = coalesce(%(url)s, airflow_run_url),
                       current_run_id = %(run_id)s
                 WHERE control_key = %(key)s
                   AND current_run_id IS NOT DISTINCT FROM %(holder)s
                   AND last_status IS NOT DISTINCT FROM %(holder_status)s
                   AND (is_active OR current_run_id IS NOT DISTINCT FROM %(run_id)s)
                RETURNING *
            ), prev AS (
                UPDATE historical_metadata h
                   SET load_status = 'Failed', load_end_time = now(), error_message = %(abandoned)s
                  FROM c WHERE %(abandoned)s::text IS NOT NULL AND h.control_key = c.control_key
                   AND h.run_id = %(holder)s AND h.run_id <> %(run_id)s
                   AND h.load_status IN ('Queued', 'In Progress')
            ), h AS (
                INSERT INTO historical_metadata (control_key, run_id, load_queued_time, load_start_time, load_status)
                SELECT control_key, current_run_id, now(),
                       CASE WHEN last_status = 'In Progress' THEN now() END, last_status FROM c
                ON CONFLICT (control_key, run_id) DO UPDATE
                   SET load_status = EXCLUDED.load_status, load_start_time = EXCLUDED.load_start_time,
                       load_queued_time = CASE WHEN EXCLUDED.load_status = 'Queued' THEN now()
                                               ELSE coalesce(historical_metadata.load_queued_time, now()) END,
                       load_end_time = NULL, error_message = NULL,
                       rows_processed = CASE WHEN %(keep_rows)s THEN historical_metadata.rows_processed END
            )
            SELECT * FROM c
            """,
            {
                "key": control_key,
                "run_id": run_id,
                "status": status,
                "holder": holder,
                "holder_status": holder_status,
                "msg": _clip(message),
                "url": airflow_run_url,
                "abandoned": _clip(abandoned),
                "keep_rows": keep_rows,
            },
        )

    def record_outcome(
        self, control_key: str, run_id: str, *, status: str, message: str | None, from_status: str
    ) -> Row | None:
        """Set the status and message of a row that ``run_id`` holds as ``from_status``, and its run's
        historical row: a step of a run (a backfill chunk) failed, or re-ran after its failure."""
        return self._one(
            """
            WITH o AS (
                UPDATE table_control
                   SET last_status = %(status)s, last_status_date_time = now(), last_status_message = %(msg)s
                 WHERE control_key = %(key)s AND current_run_id = %(run_id)s AND last_status = %(from)s
                RETURNING *
            ), h AS (
                UPDATE historical_metadata h
                   SET load_status = %(status)s,
                       load_end_time = CASE WHEN %(status)s IN ('Succeeded', 'Failed') THEN now() END,
                       error_message = CASE WHEN %(status)s = 'Failed' THEN %(msg)s END
                  FROM o WHERE h.control_key = o.control_key AND h.run_id = o.current_run_id
            )
            SELECT * FROM o
            """,
            {"key": control_key, "run_id": run_id, "status": status, "msg": _clip(message), "from": from_status},
        )

    def set_databricks_run_url(self, control_key: str, run_id: str, url: str) -> Row | None:
        return self._one(
            """
            UPDATE table_control SET databricks_run_url = %(url)s
             WHERE control_key = %(key)s AND current_run_id = %(run_id)s AND last_status = 'In Progress'
            RETURNING *
            """,
            {"key": control_key, "run_id": run_id, "url": url},
        )

    def succeed(
        self,
        control_key: str,
        run_id: str,
        *,
        rows_processed: int,
        watermark: str | None,
        message: str | None = None,
        switch_to_strategy: str | None = None,
        watermark_rows: int | None = None,
    ) -> Row | None:
        """In Progress → Succeeded. The watermark only moves forward; the retry budget is restored.

        ``switch_to_strategy``: a finished chunked backfill becomes incremental in the same transaction.
        ``watermark_rows``: the target's rows at ``watermark``, kept when ``watermark`` is the row's
        watermark afterwards (not behind it); a load without a watermark leaves the count alone.
        """
        with self._connect() as conn:
            cron = conn.execute("SELECT cron FROM table_control WHERE control_key = %(k)s", {"k": control_key})
            found = cron.fetchone()
            next_load = next_load_after(found["cron"], datetime.now().astimezone()) if found else None
            return conn.execute(
                """
            WITH done AS (
                UPDATE table_control
                   SET last_status = 'Succeeded', last_status_date_time = now(), last_status_message = %(msg)s,
                       rows_processed = %(rows)s, retry_count = 0,
                       next_load_date_time = %(next_load)s,
                       load_strategy = coalesce(%(switch_to)s, load_strategy),
                       incremental_value = watermark_max(incremental_type, incremental_value, %(wm)s),
                       watermark_rows = CASE
                           WHEN %(wm)s::text IS NULL THEN watermark_rows
                           WHEN watermark_max(incremental_type, %(wm)s, incremental_value) = %(wm)s
                               THEN %(wm_rows)s::bigint
                           ELSE watermark_rows
                       END
                 WHERE control_key = %(key)s AND last_status = 'In Progress' AND current_run_id = %(run_id)s
                RETURNING *
            ), h AS (
                UPDATE historical_metadata h
                   SET load_status = 'Succeeded', load_end_time = now(), rows_processed = %(rows)s,
                       error_message = NULL
                  FROM done WHERE h.control_key = done.control_key AND h.run_id = done.current_run_id
            )
            SELECT * FROM done
            """,
                {
                    "key": control_key,
                    "run_id": run_id,
                    "rows": rows_processed,
                    "wm": watermark,
                    "msg": _clip(message),
                    "next_load": next_load,
                    "switch_to": switch_to_strategy,
                    "wm_rows": watermark_rows,
                },
            ).fetchone()

    def fail(self, control_key: str, run_id: str, message: str) -> Row | None:
        """Queued or In Progress → Failed, for the run that holds the row."""
        return self._one(
            """
            WITH f AS (
                UPDATE table_control
                   SET last_status = 'Failed', last_status_date_time = now(), last_status_message = %(msg)s
                 WHERE control_key = %(key)s AND current_run_id = %(run_id)s
                   AND last_status IN ('Queued', 'In Progress')
                RETURNING *
            ), h AS (
                UPDATE historical_metadata h
                   SET load_status = 'Failed', load_end_time = now(), error_message = %(msg)s
                  FROM f WHERE h.control_key = f.control_key AND h.run_id = f.current_run_id
            )
            SELECT * FROM f
            """,
            {"key": control_key, "run_id": run_id, "msg": _clip(message)},
        )

    def reset_for_retry(self, control_key: str, *, note: str, max_retries: int = 3) -> Row | None:
        """Failed → ready again (status cleared, retry_count + 1), while retries remain."""
        return self._one(
            """
            UPDATE table_control
               SET last_status = NULL, last_status_date_time = now(), retry_count = retry_count + 1,
                   next_load_date_time = now(),
                   last_status_message = %(note)s || ' ' || coalesce(last_status_message, '')
             WHERE control_key = %(key)s AND last_status = 'Failed' AND retry_count < %(max)s
            RETURNING *
            """,
            {"key": control_key, "note": note, "max": max_retries},
        )

    def cancel(self, control_key: str, run_id: str, reason: str) -> Row | None:
        """Queued or In Progress → Failed, with the run recorded as Cancelled."""
        cancelled = self._cancel(
            sql.SQL(
                "control_key = %(key)s AND current_run_id = %(run_id)s AND last_status IN ('Queued', 'In Progress')"
            ),
            {"key": control_key, "run_id": run_id, "reason": reason},
        )
        return cancelled[0] if cancelled else None

    def cancel_stuck(self, status: str, older_than: timedelta, reason: str) -> list[Row]:
        """Cancel every row that has been ``status`` for longer than ``older_than``.

        Queued rows are aged from when they were queued, In Progress rows from when their load started,
        against their own ``max_running_minutes`` when they have one.
        """
        if status == "Queued":
            guard = sql.SQL("last_status = 'Queued' AND last_status_date_time < now() - %(older_than)s")
        elif status == "In Progress":
            guard = sql.SQL(
                "last_status = 'In Progress' AND last_load_date_time < now() - "
                "coalesce(make_interval(mins => max_running_minutes), %(older_than)s)"
            )
        else:
            raise ValueError(f"only Queued or In Progress rows can be stuck, not {status!r}")
        return self._cancel(guard, {"older_than": older_than, "reason": reason})

    def _cancel(self, guard: sql.Composable, params: Mapping[str, Any]) -> list[Row]:
        query = sql.SQL(
            """
            WITH c AS (
                UPDATE table_control
                   SET last_status = 'Failed', last_status_date_time = now(), last_status_message = %(reason)s
                 WHERE {guard}
                RETURNING *
            ), h AS (
                UPDATE historical_metadata h
                   SET load_status = 'Cancelled', load_end_time = now(), error_message = %(reason)s
                  FROM c WHERE h.control_key = c.control_key AND h.run_id = c.current_run_id
            )
            SELECT * FROM c ORDER BY control_key
            """
        ).format(guard=guard)
        return self._all(query, params)

    # -- operator transitions (`dataloader tables cancel|reset`, dead CLI runs) -------------------

    def cancel_current(self, control_key: str, reason: str) -> Row | None:
        """Whatever run holds the row (Queued or In Progress) → row Failed, run Cancelled."""
        cancelled = self._cancel(
            sql.SQL("control_key = %(key)s AND last_status IN ('Queued', 'In Progress')"),
            {"key": control_key, "reason": reason},
        )
        return cancelled[0] if cancelled else None

    def reset(self, control_key: str, note: str) -> Row | None:
        """Failed → ready (status cleared), with the retry budget restored; the note heads the message."""
        return self._one(
            """
            UPDATE table_control
               SET last_status = NULL, last_status_date_time = now(), retry_count = 0,
                   last_status_message = %(note)s || ' ' || coalesce(last_status_message, '')
             WHERE control_key = %(key)s AND last_status = 'Failed'
            RETURNING *
            """,
            {"key": control_key, "note": note},
        )

    def run_owner(self, control_key: str, run_id: str) -> Row | None:
        """Who runs ``run_id`` (host, pid, process start) and how long it has been silent: since its
        last heartbeat, else since it started or was queued."""
        return self._one(
            """
            SELECT run_host, run_pid, run_process_started, run_pid_namespace, heartbeat_at, load_status,
                   now() - coalesce(heartbeat_at, load_start_time, load_queued_time) AS silent_for
              FROM historical_metadata WHERE control_key = %(key)s AND run_id = %(run_id)s
            """,
            {"key": control_key, "run_id": run_id},
        )

    def beat(self, control_key: str, run_id: str) -> bool:
        """A running load's heartbeat; False once the run has ended (or was ended by someone else)."""
        with self._connect() as conn:
            done = conn.execute(
                """
                UPDATE historical_metadata SET heartbeat_at = now()
                 WHERE control_key = %(key)s AND run_id = %(run_id)s AND load_status IN ('Queued', 'In Progress')
                """,
                {"key": control_key, "run_id": run_id},
            )
            return done.rowcount == 1

    def end_orphaned_run(
        self, control_key: str, run_id: str, message: str, *, silent_for: timedelta | None = None
    ) -> Row | None:
        """Queued or In Progress for ``run_id``, whose owner is gone → Failed, the run Failed with the message.

        ``silent_for``: also require that the run has not beaten for that long (checked in the same
        statement, so a run that comes back to life in between keeps the row).
        """
        return self._one(
            """
            WITH o AS (
                UPDATE table_control c
                   SET last_status = 'Failed', last_status_date_time = now(), last_status_message = %(msg)s
                 WHERE c.control_key = %(key)s AND c.current_run_id = %(run_id)s
                   AND c.last_status IN ('Queued', 'In Progress')
                   AND (%(silent)s::interval IS NULL OR EXISTS (
                        SELECT 1 FROM historical_metadata h
                         WHERE h.control_key = c.control_key AND h.run_id = c.current_run_id
                           AND coalesce(h.heartbeat_at, h.load_start_time, h.load_queued_time)
                               < now() - %(silent)s::interval))
                RETURNING c.*
            ), h AS (
                UPDATE historical_metadata h
                   SET load_status = 'Failed', load_end_time = now(), error_message = %(msg)s
                  FROM o WHERE h.control_key = o.control_key AND h.run_id = o.current_run_id
            )
            SELECT * FROM o
            """,
            {"key": control_key, "run_id": run_id, "msg": _clip(message), "silent": silent_for},
        )

    # -- what the monitors look at ---------------------------------------------------------------

    def failed_for_analysis(self, *, max_retries: int, review_marker: str) -> list[Row]:
        """Failed rows with retries left that no analysis has sent to review yet."""
        return self._all(
            """
            SELECT * FROM table_control
            WHERE last_status = 'Failed' AND retry_count < %(max)s AND is_active
              AND coalesce(last_status_message, '') NOT LIKE %(marker)s
            ORDER BY last_status_date_time, control_key
            """,
            {"max": max_retries, "marker": review_marker + "%"},
        )

    def mark_for_review(self, control_key: str, note: str) -> Row | None:
        """Failed stays Failed; the note goes in front of the message (once)."""
        return self._one(
            """
            UPDATE table_control SET last_status_message = %(note)s || ' ' || coalesce(last_status_message, '')
             WHERE control_key = %(key)s AND last_status = 'Failed'
               AND coalesce(last_status_message, '') NOT LIKE %(like)s
            RETURNING *
            """,
            {"key": control_key, "note": note, "like": note + "%"},
        )

    def in_flight(self) -> list[Row]:
        """Rows that say a run holds them: Queued or In Progress."""
        return self._all(
            "SELECT * FROM table_control WHERE last_status IN ('Queued', 'In Progress') ORDER BY control_key"
        )

    def landed_without_staging_model(self) -> list[Row]:
        return self._all(
            """
            SELECT c.*, d.db_type FROM table_control c JOIN table_control_dbconfig d USING (db_config_key)
            WHERE c.last_status = 'Succeeded' AND NOT c.staging_model_processed
            ORDER BY c.control_key
            """
        )

    def mark_staging_model_processed(self, control_key: str) -> Row | None:
        return self._one(
            "UPDATE table_control SET staging_model_processed = true WHERE control_key = %(k)s RETURNING *",
            {"k": control_key},
        )

    # -- load verification ------------------------------------------------------------------------

    def record_verification(self, control_key: str, run_id: str, status: str, result: Mapping[str, Any]) -> Row | None:
        """The verification of run ``run_id`` (``equal`` or ``mismatch``, and its small result) on the run's
        historical row; a re-run overwrites it. The load's own status is left alone. None: no such run."""
        return self._one(
            """
            UPDATE historical_metadata
               SET verify_status = %(status)s, verified_at = now(), verify_result = %(result)s
             WHERE control_key = %(key)s AND run_id = %(run_id)s
            RETURNING *
            """,
            {"key": control_key, "run_id": run_id, "status": status, "result": Jsonb(dict(result))},
        )

    def last_succeeded_run(self, control_key: str) -> Row | None:
        """The latest Succeeded run of a row: the committed state a verification from a shell checks."""
        return self._one(
            """
            SELECT * FROM historical_metadata
             WHERE control_key = %(key)s AND load_status = 'Succeeded'
             ORDER BY load_end_time DESC NULLS LAST, id DESC LIMIT 1
            """,
            {"key": control_key},
        )

    # -- history ----------------------------------------------------------------------------------

    def runs(self, control_key: str | None = None) -> list[Row]:
        return self._all(
            """
            SELECT * FROM historical_metadata
            WHERE control_key = %(k)s OR %(k)s::text IS NULL
            ORDER BY id
            """,
            {"k": control_key},
        )

    def latest_runs(self, control_key: str, limit: int) -> list[Row]:
        """A row's last ``limit`` runs, oldest first (historical_metadata_key_id_idx read backwards)."""
        newest_first = self._all(
            "SELECT * FROM historical_metadata WHERE control_key = %(k)s ORDER BY id DESC LIMIT %(limit)s",
            {"k": control_key, "limit": limit},
        )
        return newest_first[::-1]

    def history(self, control_key: str) -> list[Row]:
        return self._all(
            "SELECT * FROM table_control_history WHERE control_key = %(k)s ORDER BY id", {"k": control_key}
        )
