"""The demo: the control database and a source database on an embedded PostgreSQL; every demo table
loaded with its strategy into Delta tables on the local Spark engine; then a round of source changes and
a second load; then the control table and the run history."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from include.control import migrate
from include.control.db import CONTROL_DB_URL_ENV
from include.control.repository import ControlRepository
from include.dataloader import cli, runner
from include.dataloader.engine import WAREHOUSE_ENV, local_engine
from include.dataloader.target import TableName
from include.demo import source_data
from include.local import postgres

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"
CONTROL_TABLES = Path(__file__).parent / "control_tables.yaml"
SUMMARY_COLUMNS = ("inserted", "updated", "deleted", "rows_read", "watermark", "skipped", "duration_seconds")


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)), flush=True)


def load_all(repo: ControlRepository, engine, round_name: str) -> None:
    rows = []
    for row in repo.list(active_only=True):
        key = row["control_key"]
        summary = runner.run(repo, key, f"demo__{round_name}__{key}", engine)
        target = TableName(row["destination_catalog"], row["destination_schema"], row["destination_table_name"])
        rows.append(
            {
                "control_key": key,
                "strategy": summary["strategy"],
                **{k: summary[k] for k in SUMMARY_COLUMNS},
                "target_rows": engine.warehouse.read(target).count(),
                "message": summary["message"] or "",
            }
        )
    columns = ("control_key", "strategy", *SUMMARY_COLUMNS, "target_rows", "message")
    print(cli.format_table(rows, columns))


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    banner("embedded PostgreSQL")
    server = postgres.start(LOCAL / "pgdata", keep=True)
    control_url = postgres.create_database(server.get_uri(), "dataloader_control", replace=True)
    source_url = postgres.create_database(server.get_uri(), "demo_source", replace=True)
    os.environ[CONTROL_DB_URL_ENV] = control_url
    os.environ["DEMO_SOURCE_URL"] = source_url  # the demo dbconfig names this secret (scope: env)
    print(f"control database: {control_url}\nsource database:  {source_url}")

    banner("control database schema")
    migrate.upgrade(control_url)
    print(f"migrated to revision {migrate.current_revision(control_url)}")

    banner("demo control table")
    cli.main(["tables", "import", str(CONTROL_TABLES)])
    cli.main(["tables", "list"])

    banner("demo source tables")
    source_data.create(source_url)
    print("customers, orders, events, daily_metrics, products, transactions")

    warehouse = Path(os.environ.get(WAREHOUSE_ENV) or LOCAL / "warehouse")
    engine = local_engine(warehouse)
    shutil.rmtree(warehouse / "bronze", ignore_errors=True)  # every demo starts from empty targets
    repo = ControlRepository(control_url, change_source="demo")

    banner("first load of every table (Spark on Sail, Delta)")
    load_all(repo, engine, "1")

    banner("source changes, then the second load")
    source_data.change(source_url)
    load_all(repo, engine, "2")

    banner("control table after the loads")
    cli.main(["tables", "list"])

    banner("historical_metadata")
    print(
        cli.format_table(
            repo.runs(), ("control_key", "run_id", "load_status", "rows_processed", "load_start_time", "load_end_time")
        )
    )

    banner("where the results are")
    print(f"Delta tables:      {warehouse / 'bronze' / 'demo'}")
    print(f"control database:  {control_url}")
    print(f"PostgreSQL data:   {LOCAL / 'pgdata'} (the server stops when the demo exits)")
    return 0
