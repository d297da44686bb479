"""The secret canary: every password and token the tests use starts with ``canary-``; at the end of the session
``tests/reliability/test_secret_canary.py`` scans what the tests wrote for that prefix and fails on any hit.

Fixtures register what they create here: the folders outside the session's basetemp, the PostgreSQL servers,
the alert payloads they capture. What must hold a secret by design (a login's password file, a test's own
input) is registered with the reason, and skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

CANARY = "canary-"
BLOCK = 1 << 20  # files are streamed in blocks of this size (plus an overlap): memory stays flat

SUMMARY = pytest.StashKey[str]()  # what the final check scanned, for the terminal summary

_folders: dict[Path, str] = {}
_servers: dict[str, str] = {}
_payloads: list[tuple[str, list]] = []
_by_design: dict[str, str] = {}

# The folders of a PostgreSQL data directory (one holding PG_VERSION) that hold rows: not scanned as files, since
# the rows are scanned in the databases themselves (precisely, and in a fraction of the time: a suite's
# databases take gigabytes of heap files); the WAL also holds the rows the scanner's own test plants, then
# drops. The server's other files (its log, settings) are scanned.
PG_ROW_FOLDERS = ("base", "global", "pg_wal", "pg_xact", "pg_multixact", "pg_subtrans")

# In a database that holds these tables (the control database, the sentinel's audit), they are scanned row by row.
CONTROL_TABLES = (
    "table_control",
    "table_control_history",
    "historical_metadata",
    "table_control_dbconfig",
    "sentinel_audit",
)
# In Airflow's metadata database (it has ``xcom``) every table is scanned but these.
AIRFLOW_SKIPPED = {
    "connection": "Airflow's own connection table holds the connections' passwords (encrypted with the Fernet key)",
}


def watch_folder(path: Path, what: str) -> None:
    """Scan this folder (one outside the basetemp) at the end of the session."""
    _folders[Path(path)] = what


def watch_server(url: str, what: str) -> None:
    """Scan the databases of this PostgreSQL server (a libpq URL of any of its databases)."""
    _servers[url] = what


def watch_payloads(payloads: list, what: str) -> None:
    """Scan these captured payloads (the list is read at the end, so later appends count)."""
    _payloads.append((what, payloads))


def by_design(path: Path, why: str) -> None:
    """This file or folder must hold a secret (a login's password file, a test's own input, a copy of this
    repository, whose tests hold the canaries): not scanned, for ``why``."""
    _by_design[str(Path(path).resolve())] = why


@dataclass(frozen=True)
class Hit:
    where: str  # a file, a database table, a payload
    excerpt: str  # the text around the canary, its value blanked

    def __str__(self) -> str:
        return f"{self.where}: ...{self.excerpt}..."


def redacted_excerpt(text: str, at: int) -> str:
    """The 40 characters before the canary and the 20 after its value, the value itself blanked."""
    end = at + len(CANARY)
    while end < len(text) and not text[end].isspace() and text[end] not in "\"',;}&@)]\\":
        end += 1
    after = text[end : end + 20]
    return " ".join(f"{text[max(0, at - 40) : at]}{CANARY}***{after}".split())


def scan_file(path: Path) -> Hit | None:
    """The first canary in a file, streamed block by block (any size, text or binary)."""
    needle, tail = CANARY.encode(), b""
    with open(path, "rb") as stream:
        while block := stream.read(BLOCK):
            data = tail + block
            at = data.find(needle)
            if at >= 0:
                text = data[max(0, at - 200) : at + 200].decode("utf-8", "replace")
                return Hit(str(path), redacted_excerpt(text, text.find(CANARY)))
            tail = data[-(len(needle) - 1) :]
    return None


def scan_folders(roots: Iterable[Path]) -> tuple[list[Hit], int, int]:
    """(hits, files scanned, bytes scanned) of every file under ``roots`` but the by-design ones."""
    hits, files, size = [], 0, 0
    for root in roots:
        for folder, dirs, names in os.walk(root):
            if "PG_VERSION" in names:
                dirs[:] = [d for d in dirs if d not in PG_ROW_FOLDERS]
            dirs[:] = [d for d in dirs if str(Path(folder, d).resolve()) not in _by_design]
            for name in names:
                path = Path(folder, name)
                if str(path.resolve()) in _by_design or path.is_symlink() or not path.is_file():
                    continue
                try:
                    hit = scan_file(path)
                    files, size = files + 1, size + path.stat().st_size
                except (FileNotFoundError, PermissionError):  # removed meanwhile (a server's temporary file)
                    continue
                if hit:
                    hits.append(hit)
    return hits, files, size


def scan_server(url: str, only: str | None = None) -> tuple[list[Hit], int]:
    """(hits, databases scanned): the control tables of every database of the server, and every table but
    Airflow's connections of an Airflow metadata database."""
    import psycopg
    from psycopg import sql

    from include.local.postgres import database_url

    hits = []
    with psycopg.connect(url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")]
    names = [n for n in names if only in (None, n)]
    for name in names:
        try:
            conn = psycopg.connect(database_url(url, name), autocommit=True)
        except psycopg.OperationalError:  # dropped meanwhile
            continue
        with conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            ]
            if "xcom" in tables:
                wanted = [t for t in tables if t not in AIRFLOW_SKIPPED]
            else:
                wanted = [t for t in tables if t in CONTROL_TABLES]
            for table in wanted:
                query = sql.SQL("SELECT t::text FROM {} t WHERE strpos(t::text, %s) > 0 LIMIT 1").format(
                    sql.Identifier(table)
                )
                row = conn.execute(query, (CANARY,)).fetchone()
                if row:
                    hits.append(Hit(f"database {name}, table {table}", redacted_excerpt(row[0], row[0].find(CANARY))))
    return hits, len(names)


def scan_payloads(captured: Iterable[tuple[str, list]] | None = None) -> list[Hit]:
    hits = []
    for what, payloads in _payloads if captured is None else captured:
        for payload in payloads:
            text = json.dumps(payload, default=str)
            if CANARY in text:
                hits.append(Hit(what, redacted_excerpt(text, text.find(CANARY))))
    return hits


def registered() -> tuple[dict[Path, str], dict[str, str], dict[str, str], int]:
    """(folders, servers, by-design files, payloads captured) registered so far."""
    return dict(_folders), dict(_servers), dict(_by_design), sum(len(p) for _, p in _payloads)
