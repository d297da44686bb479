"""The demo: an embedded PostgreSQL holds the control database; the demo control table is loaded and shown."""

from __future__ import annotations

import os
from pathlib import Path

from include.control import migrate
from include.control.db import CONTROL_DB_URL_ENV
from include.dataloader import cli
from include.local import postgres

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"
CONTROL_TABLES = Path(__file__).parent / "control_tables.yaml"


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)), flush=True)


def main() -> int:
    banner("embedded PostgreSQL")
    server = postgres.start(LOCAL / "pgdata", keep=True)
    control_url = postgres.create_database(server.get_uri(), "dataloader_control", replace=True)
    os.environ[CONTROL_DB_URL_ENV] = control_url
    print(f"control database: {control_url}")

    banner("control database schema")
    migrate.upgrade(control_url)
    print(f"migrated to revision {migrate.current_revision(control_url)}")

    banner("demo control table")
    cli.main(["tables", "import", str(CONTROL_TABLES)])
    cli.main(["tables", "list"])

    banner("where the results are")
    print(f"control database: {control_url}")
    print(f"PostgreSQL data folder: {LOCAL / 'pgdata'} (the server stops when the demo exits)")
    return 0
