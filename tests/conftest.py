"""Shared fixtures: a real, throwaway PostgreSQL server for the whole session.

Each test that needs the control database gets its own database, cloned from a migrated template
(CREATE DATABASE ... TEMPLATE takes milliseconds; migrating each time would not).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests import canary

ROOT = Path(__file__).resolve().parents[1]

_db_names = itertools.count()


def pytest_configure(config):
    """Airflow reads its configuration at import: point it at a private home before any test imports it.

    A hook, not module-level code: a DAG bundle of the whole repository may import this file, and nothing may
    happen then (``.airflowignore`` keeps tests/ out of the parse as well).
    """
    home = Path(tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    canary.watch_folder(home, "the session's AIRFLOW_HOME (dag.test() metadata and XCom, task logs)")


FINAL_CHECK = "test_secret_canary.py::test_nothing_the_tests_wrote_holds_a_canary"


def pytest_collection_modifyitems(config, items):
    """The secret canary scan runs last, after every test wrote what it writes (while the servers still run)."""
    items.sort(key=lambda item: item.nodeid.endswith(FINAL_CHECK))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if canary.SUMMARY in config.stash:
        terminalreporter.write_line(f"secret canary: {config.stash[canary.SUMMARY]}")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 16 server, started once per test session and deleted afterwards."""
    from include.local import postgres

    server = postgres.start(tmp_path_factory.mktemp("pgdata"))
    canary.watch_server(server.get_uri(), "the session's PostgreSQL")
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pg_url(pg_server) -> str:
    return pg_server.get_uri()


@pytest.fixture(scope="session")
def control_template(pg_url) -> str:
    from include.control import migrate
    from include.local import postgres

    url = postgres.create_database(pg_url, "control_template", replace=True)
    migrate.upgrade(url)
    return "control_template"


@pytest.fixture
def new_database(pg_url):
    """A factory of empty databases on the session server: ``new_database(template=None) -> url``."""
    import psycopg
    from psycopg import sql

    from include.local import postgres

    def create(template: str | None = None) -> str:
        name = f"test_{os.getpid()}_{next(_db_names)}"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(query)
        return postgres.database_url(pg_url, name)

    return create


@pytest.fixture
def control_url(new_database, control_template) -> str:
    """A migrated, empty control database of the test's own."""
    return new_database(template=control_template)


@pytest.fixture
def repo(control_url):
    from include.control.repository import ControlRepository

    return ControlRepository(control_url, change_source="test")


@pytest.fixture(scope="session")
def spark():
    """The local Spark engine (Sail, in-process), one per test session."""
    from include.local import spark as local_spark

    return local_spark.session()


@pytest.fixture
def source_url(new_database) -> str:
    """An empty source database of the test's own."""
    return new_database()


@pytest.fixture
def source_sql(source_url):
    """Run SQL on the source database: ``source_sql("INSERT ...", params)``."""
    import psycopg

    def run(query: str, params=None) -> list[tuple]:
        with psycopg.connect(source_url) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    return run


def airflow_conn_json(url: str, conn_type: str = "postgres") -> str:
    """An Airflow connection (JSON form, as in AIRFLOW_CONN_*) for a libpq URL."""
    params = conninfo_to_dict(url)
    return json.dumps(
        {
            "conn_type": conn_type,
            "host": params.get("host"),
            "port": int(params["port"]) if params.get("port") else None,
            "schema": params.get("dbname"),
            "login": params.get("user"),
            "password": params.get("password") or None,
        }
    )


@pytest.fixture
def control_connection(control_url, monkeypatch):
    """The test's control database served to Airflow as the connection ``dataloader_control``."""
    monkeypatch.setenv("AIRFLOW_CONN_DATALOADER_CONTROL", airflow_conn_json(control_url))
    return control_url


@contextlib.contextmanager
def serve_webhook():
    """A webhook receiver on 127.0.0.1: ``.url``, ``.received`` (the JSON bodies), ``.posted`` ((path, body))."""
    posted: list[tuple[str, dict]] = []
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            posted.append((self.path, body))
            received.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.posted = posted
    server.received = received
    canary.watch_payloads(received, f"alerts posted to the test webhook on port {server.server_address[1]}")
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook():
    with serve_webhook() as server:
        yield server


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's own metadata database (SQLite in the test AIRFLOW_HOME), migrated once."""
    from airflow.utils import db

    db.initdb()
