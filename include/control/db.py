"""Connecting to the control database (PostgreSQL; Lakebase in production)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from sqlalchemy.engine import URL

CONTROL_DB_URL_ENV = "DATALOADER_CONTROL_DB_URL"


class ControlDbNotConfigured(RuntimeError):
    pass


def control_db_url(explicit: str | None = None) -> str:
    """The control database URL: an explicit argument wins, then ``$DATALOADER_CONTROL_DB_URL``."""
    url = explicit or os.environ.get(CONTROL_DB_URL_ENV)
    if not url:
        raise ControlDbNotConfigured(
            f"no control database configured: pass --db-url or set {CONTROL_DB_URL_ENV} "
            "to a libpq URI such as postgresql://user@host:5432/dataloader (or 'host=... dbname=...')"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:  # the message names no part of the URL: it may hold a password
        raise ControlDbNotConfigured(
            f"--db-url (or {CONTROL_DB_URL_ENV}) is not a libpq URI or conninfo ({' '.join(str(exc).split())}); "
            "give one such as postgresql://user@host:5432/dataloader"
        ) from None
    return url


def sqlalchemy_url(url: str) -> str:
    """The same database as a SQLAlchemy URL (for Alembic), on the psycopg 3 driver.

    Accepts both libpq forms, a URI or ``key=value`` pairs; libpq parameters other than user, password
    and dbname (host, port, sslmode, a unix socket folder, ...) are passed through as query arguments.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ControlDbNotConfigured(f"control database URL is not a libpq URI or conninfo: {exc}") from None
    user, password, dbname = params.pop("user", None), params.pop("password", None), params.pop("dbname", None)
    rendered = URL.create(
        "postgresql+psycopg",
        username=user,
        password=password,
        database=dbname,
        query={k: str(v) for k, v in params.items()},
    )
    return rendered.render_as_string(hide_password=False)


@contextmanager
def connect(
    url: str, *, change_source: str | None = None, settings: Mapping[str, str] | None = None
) -> Iterator[psycopg.Connection]:
    """A connection that commits on success and rolls back on error.

    ``change_source`` is recorded by the history trigger for every change made through it; ``settings``
    are further ``dataloader.*`` session settings (the owner of a CLI run, read by column defaults).
    """
    values = {**({"change_source": change_source} if change_source else {}), **(settings or {})}
    with psycopg.connect(url, row_factory=dict_row, application_name="dataloader") as conn:
        for name, value in values.items():
            conn.execute("SELECT set_config(%s, %s, false)", (f"dataloader.{name}", value))
        if values:
            conn.commit()
        yield conn
