"""Builders for control rows used across the control tests."""

from __future__ import annotations

from typing import Any

import psycopg

from include.control.model import ControlRow
from include.control.repository import ControlRepository


def row(control_key: str = "sales.orders", **overrides: Any) -> ControlRow:
    fields: dict[str, Any] = {
        "control_key": control_key,
        "db_config_key": "sales_pg",
        "source_schema": "public",
        "source_table_name": "orders",
        "destination_schema": "sales",
        "destination_table_name": control_key.rsplit(".", 1)[-1].replace("-", "_"),
        "load_strategy": "incremental",
        "cron": "0 * * * *",
        "incremental_column": "updated_at",
        "incremental_type": "timestamp",
        "primary_key_columns": ["order_id"],
    }
    fields.update(overrides)
    return ControlRow.from_mapping(fields)


def add(repo: ControlRepository, control_key: str = "sales.orders", **overrides: Any) -> dict:
    if repo.get_dbconfig("sales_pg") is None:
        repo.upsert_dbconfig("sales_pg", "postgresql", {"host": "kv-sales-host", "password": "kv-sales-pw"})
    return repo.add(row(control_key, **overrides))


def dataloader_cli(control_url: str, capsys):
    """``run(*argv) -> (exit code, stdout, stderr)`` of ``dataloader --db-url <control_url> ...`` in this process."""
    from include.dataloader.cli import main

    def run(*argv):
        code = main(["--db-url", control_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def execute(url: str, query: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def make_due(url: str, control_key: str) -> None:
    execute(
        url,
        "UPDATE table_control SET next_load_date_time = now() - interval '1 minute' WHERE control_key = %s",
        (control_key,),
    )


class RecordingApi:
    """An HTTP API on 127.0.0.1 that answers canned replies and records every request as
    (method, path, Authorization header, JSON body): Airflow's REST API and Databricks' Jobs API stand-in.

    :param answers: (method, path) -> (status, JSON reply); anything else is a 404."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, Any]]):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, str | None, Any]] = []
        requests, replies = self.requests, answers

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                requests.append((self.command, self.path, self.headers.get("Authorization"), body))
                status, reply = replies.get((self.command, self.path), (404, {"detail": "not found"}))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PATCH = do_GET = _answer

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def configure(self, monkeypatch) -> None:
        """Point the `dataloader` command's Airflow and Databricks settings at this server."""
        monkeypatch.setenv("DATALOADER_AIRFLOW_API_URL", self.url)
        monkeypatch.setenv("DATALOADER_AIRFLOW_API_USER", "ops")
        monkeypatch.setenv("DATALOADER_AIRFLOW_API_PASSWORD", "canary-s3cret")
        monkeypatch.setenv("DATABRICKS_HOST", self.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", "canary-dapi-1")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


TOKEN_REQUEST = ("POST", "/auth/token", None, {"username": "ops", "password": "canary-s3cret"})
