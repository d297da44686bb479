"""An embedded PostgreSQL 16 server (the ``pgserver`` wheel): no root, no apt, one folder of data."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


def start(data_dir: Path, *, keep: bool = False):
    """Start (or reuse) a server on a unix socket in ``data_dir``.

    :param keep: leave the data folder in place when the server stops (the demo keeps it to look at).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine
        warnings.simplefilter("ignore")
        import pgserver  # a development dependency: production uses Lakebase / a managed PostgreSQL

        return pgserver.get_server(data_dir, cleanup_mode="stop" if keep else "delete")


def database_url(server_url: str, dbname: str) -> str:
    """The server's URL pointed at another database."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def create_database(server_url: str, dbname: str, *, replace: bool = False) -> str:
    """Create ``dbname`` on the server (dropping it first when ``replace``) and return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        name = psycopg.sql.Identifier(dbname)
        if replace:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(name))
    return database_url(server_url, dbname)
