"""Audit events (COMPARISON_START, CHUNK, COMPARISON_END, COMPARISON_FAILED) as JSON lines under the run's
artifacts root, and in the control database's ``sentinel_audit`` table when the config names one. Errors
are redacted before they are written anywhere."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.redact import describe

log = logging.getLogger(__name__)


def one_line(text: str) -> str:
    return " ".join(text.split())


class Audit:
    """:param path: the JSON-lines file (appended to; on storage that cannot append, one file per event
        in a folder of that name).
    :param run_id: the session id (CLI) or the DAG run id.
    :param secrets: values to blank out of error messages (passwords, URLs)."""

    def __init__(self, path, run_id: str, *, db_url: str | None = None, secrets: list[str] = ()):
        self.path, self.run_id, self.db_url, self.secrets = path, run_id, db_url, list(secrets)

    def error(self, exc: BaseException) -> str:
        """``Type: message`` of an exception on one line, secrets redacted."""
        return one_line(describe(exc, *self.secrets))

    def event(self, event: str, table: str, **fields: Any) -> None:
        record = {"time": datetime.now(UTC).isoformat(), "session": self.run_id, "event": event, "table": table}
        text = json.dumps(record | fields, default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.path.open("a") as out:
                out.write(text + "\n")
        except (OSError, ValueError, NotImplementedError):  # object storage without append
            folder = self.path.parent / self.path.stem
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{record['time']}_{uuid.uuid4().hex[:8]}.json").write_text(text)
        if self.db_url:
            with psycopg.connect(self.db_url) as conn:
                conn.execute(
                    "INSERT INTO sentinel_audit (session_id, run_id, table_name, event, details) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (self.run_id, self.run_id, table, event, Jsonb(json.loads(json.dumps(fields, default=str)))),
                )
        if event != "CHUNK":
            log.info("%s %s %s", event, table, fields)
