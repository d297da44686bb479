"""Operator page benchmark: each page with 1,000 control rows and 100,000 history rows, against the bare SQL
of the same page as the baseline.

A throwaway PostgreSQL 16 (pgserver) gets a migrated control database seeded with generate_series:
1,000 control rows over two sources and six strategies, 100,000 ``historical_metadata`` runs, 100,000
``table_control_history`` changes, 20,000 ``sentinel_audit`` events. Each page is fetched through FastAPI's
TestClient, logged in with a real Airflow JWT (SimpleAuthManager on a scratch SQLite metadata database),
``--repeat`` times; its baseline is the page's own queries (``dataplatform.ui.queries``) run alone, each on
a new connection as the page does. Prints a Markdown table for bench/RESULTS.md.

    .venv/bin/python bench/ui_bench.py --repeat 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
warnings.simplefilter("ignore")

CONTROL_ROWS, RUNS, CHANGES, AUDIT = 1_000, 100_000, 100_000, 20_000
KEY = "bench.t0500"

SEED = f"""
INSERT INTO table_control_dbconfig (db_config_key, db_type, db_config_value)
VALUES ('sales_pg', 'postgresql', '{{"host": "kv-host", "password": "kv-pw"}}'),
       ('crm_ora', 'oracle', '{{"host": "kv-crm"}}');
INSERT INTO table_control (control_key, db_config_key, source_table_name, destination_schema,
    destination_table_name, load_strategy, cron, incremental_column, incremental_type, incremental_value,
    primary_key_columns, rolling_column, rolling_days, last_status, last_status_date_time,
    last_status_message, next_load_date_time, retry_count, current_run_id)
SELECT 'bench.t' || lpad(g::text, 4, '0'), CASE WHEN g % 3 = 0 THEN 'crm_ora' ELSE 'sales_pg' END,
       't' || g, 'bench', 't' || g,
       (ARRAY['full', 'incremental', 'append_only', 'rolling', 'check_and_load', 'chunked_backfill'])[g % 6 + 1],
       '@hourly', 'updated_at', 'timestamp', '2024-01-01 00:00:00', ARRAY['id'], 'updated_at', 7,
       (ARRAY[NULL, 'Succeeded', 'Failed', 'Queued', 'In Progress'])[g % 5 + 1], now() - g * interval '1 minute',
       CASE WHEN g % 5 = 2 THEN 'ORA-12170: TNS:Connect timeout occurred' END, now() + g * interval '1 minute',
       g % 4, 'manual__' || g
  FROM generate_series(0, {CONTROL_ROWS - 1}) g;
INSERT INTO historical_metadata (control_key, run_id, load_queued_time, load_start_time, load_end_time,
    rows_processed, load_status)
SELECT 'bench.t' || lpad((g % {CONTROL_ROWS})::text, 4, '0'), 'scheduled__' || g,
       now() - g * interval '1 minute', now() - g * interval '1 minute', now() - g * interval '1 minute',
       g, 'Succeeded'
  FROM generate_series(1, {RUNS}) g;
INSERT INTO table_control_history (control_key, changed_at, change_type, change_source, old_values, new_values)
SELECT 'bench.t' || lpad((g % {CONTROL_ROWS})::text, 4, '0'), now() - g * interval '1 second', 'UPDATE',
       'airflow', jsonb_build_object('last_status', 'Queued'),
       jsonb_build_object('last_status', 'Failed', 'last_status_message',
           CASE WHEN g % 50 = 0 THEN '[AI: Retry Recommended] timeout' ELSE 'timeout' END)
  FROM generate_series(1, {CHANGES}) g;
INSERT INTO sentinel_audit (session_id, table_name, event, details)
SELECT 's' || (g / 10), 'hr.t' || (g % 10), CASE WHEN g % 10 = 9 THEN 'COMPARISON_END' ELSE 'CHUNK' END,
       jsonb_build_object('results', jsonb_build_object('missing_in_target', g % 7, 'different', g % 3))
  FROM generate_series(1, {AUDIT}) g;
ANALYZE;
"""


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median and worst milliseconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    os.environ["AIRFLOW_HOME"] = str(work / "airflow")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = "bench-" + "0" * 64
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "ops:user"
    import psycopg
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.utils import db as airflow_db
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dataplatform.ui import comparisons, queries
    from dataplatform.ui.app import create_app
    from include.control import migrate
    from include.control.db import connect
    from include.local import postgres

    airflow_db.initdb()  # the token check looks for revoked tokens there
    server = postgres.start(work / "pg")
    try:
        url = postgres.create_database(server.get_uri(), "control")
        migrate.upgrade(url)
        start = time.perf_counter()
        with psycopg.connect(url) as conn:
            conn.execute(SEED)
        seeded = time.perf_counter() - start
        with psycopg.connect(url) as conn:
            counts = [
                conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("table_control", "historical_metadata", "table_control_history", "sentinel_audit")
            ]
        artifacts = work / "artifacts"
        artifacts.mkdir()

        auth = init_auth_manager()
        app = FastAPI()
        app.mount("/dataplatform", create_app(lambda: url, artifacts_root=lambda: str(artifacts)))
        client = TestClient(app, base_url="http://testserver/dataplatform")
        client.cookies.set("_token", auth.generate_jwt(SimpleAuthManagerUser(username="ops", role="user")))

        def rows_sql(**flt):
            return lambda: (queries.control_rows(url, queries.RowFilter(**flt)), queries.sources(url))

        def row_sql():
            with connect(url) as conn:
                conn.execute(
                    "SELECT c.*, d.db_type FROM table_control c JOIN table_control_dbconfig d "
                    "USING (db_config_key) WHERE c.control_key = %s",
                    (KEY,),
                ).fetchone()
            queries.recent_runs(url, KEY)
            queries.recent_changes(url, KEY)
            queries.latest_analysis(url, KEY)

        pages = [
            ("rows, first page", "/", rows_sql()),
            ("rows, status=Failed", "/?status=Failed", rows_sql(status="Failed")),
            ("rows, source+strategy", "/?source=crm_ora&strategy=full", rows_sql(source="crm_ora", strategy="full")),
            ("rows, page 20 of 20", "/?page_number=20", rows_sql(page=20)),
            (f"row {KEY}", f"/rows/{KEY}", row_sql),
            ("comparisons", "/comparisons", lambda: (queries.sentinel_results(url), comparisons.runs(artifacts))),
            ("source databases", "/dbconfigs", lambda: queries.dbconfigs(url)),
        ]
        print(f"seeded {counts} (control rows, runs, history changes, audit events) in {seeded:.1f} s")
        print(f"{args.repeat} requests per page, after one warm-up\n")
        print("| page | bare SQL median (ms) | page median (ms) | page worst (ms) | page / SQL |")
        print("|---|---|---|---|---|")
        for name, path, baseline in pages:
            assert client.get(path).status_code == 200, path
            sql_median, _ = timed(baseline, args.repeat)
            page_median, page_worst = timed(lambda p=path: client.get(p), args.repeat)
            print(
                f"| {name} | {sql_median:.1f} | {page_median:.1f} | {page_worst:.1f} | {page_median / sql_median:.2f} |"
            )
        with psycopg.connect(url) as conn:
            print("\nplans (EXPLAIN of the row page's history read and the rows page's filtered read):")
            for query, params in (
                (
                    "SELECT changed_at FROM table_control_history WHERE control_key = %s "
                    "ORDER BY changed_at DESC LIMIT 20",
                    (KEY,),
                ),
                ("SELECT * FROM historical_metadata WHERE control_key = %s ORDER BY id DESC LIMIT 20", (KEY,)),
            ):
                plan = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + query, params).fetchall()
                print("    " + "\n    ".join(r[0] for r in plan))
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
