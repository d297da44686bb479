"""The demo: the control database and a source database on an embedded PostgreSQL; the snapshot DAG and
every demo table's loader DAG run with Airflow (``dag.test()``, in this process) on the local Spark
engine; then a round of source changes and a second run of every DAG; then the control table and the
run history."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from include.control import migrate
from include.control.db import CONTROL_DB_URL_ENV
from include.control.repository import ControlRepository
from include.dataloader import cli
from include.dataloader.engine import WAREHOUSE_ENV
from include.demo import clickhouse_source, source_data
from include.local import postgres

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"
CONTROL_TABLES = Path(__file__).parent / "control_tables.yaml"
SUMMARY_COLUMNS = ("inserted", "updated", "deleted", "rows_read", "watermark", "skipped")


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)), flush=True)


def airflow_connection(url: str) -> str:
    params = conninfo_to_dict(url)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": params.get("host"),
            "port": int(params["port"]) if params.get("port") else None,
            "schema": params.get("dbname"),
            "login": params.get("user"),
        }
    )


def clickhouse_connection(url: str) -> str:
    """The ClickHouse source as Airflow sees it: the loader's own driver, the whole URL in the extra."""
    return json.dumps({"conn_type": "generic", "extra": {"url": url}})


def configure_airflow(control_url: str, source_url: str) -> Path:
    """A private Airflow home under .local/ and the settings the DAGs read, before Airflow is imported."""
    home = LOCAL / "airflow"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_DATALOADER_CONTROL": airflow_connection(control_url),
            # in Airflow a source is the connection its db_config_key names
            "AIRFLOW_CONN_DEMO_POSTGRES": airflow_connection(source_url),
            "AIRFLOW_CONN_DEMO_CLICKHOUSE": clickhouse_connection(os.environ["DEMO_CLICKHOUSE_URL"]),
            "DATALOADER_SNAPSHOT_PATH": str(LOCAL / "control_snapshot.json"),
            # dag.test() cannot run a DAG with a deadline (see FACTS.md); the scheduler can
            "DATALOADER_DEADLINE_ALERTS": "off",
            "DATALOADER_RETRIES": "0",
            # check_and_load: a quiet source ends the wait after 10 seconds here (30 minutes by default)
            "DATALOADER_CHANGE_WAIT_MINUTES": "0.17",
            "DATALOADER_CHANGE_POLL_SECONDS": "2",
        }
    )
    import sys

    sys.path[:0] = [str(ROOT / "plugins")]
    from airflow.utils import db

    db.initdb()
    return home


def run_dags(repo: ControlRepository, warehouse: Path, round_name: str) -> None:
    from dataplatform.factories.loader import loader_dags_from_snapshot
    from dataplatform.factories.snapshot import build_snapshot_dag
    from include.dataloader.target import LocalWarehouse, TableName
    from include.local import spark

    snapshot_run = build_snapshot_dag().test()
    print(f"dataloader_control_snapshot: {snapshot_run.state}")
    local = LocalWarehouse(spark.session(), warehouse)
    rows = []
    for key, dag in loader_dags_from_snapshot().items():
        run = dag.test()
        tis = {ti.task_id: ti for ti in run.get_task_instances()}
        last = tis.get("load") or tis.get("finalize")
        summary = (last.xcom_pull(task_ids=last.task_id) if last and last.state == "success" else None) or {}
        row = repo.get(key)
        target = TableName(row["destination_catalog"], row["destination_schema"], row["destination_table_name"])
        rows.append(
            {
                "dag_id": key,
                "run": run.state,
                "tasks": " ".join(f"{t}:{ti.state}" for t, ti in sorted(tis.items()) if t != "load_chunk")
                + (
                    f" load_chunk:{sum(t.task_id == 'load_chunk' for t in run.get_task_instances())}x"
                    if "load_chunk" in tis
                    else ""
                ),
                **{k: summary.get(k, "") for k in SUMMARY_COLUMNS},
                "target_rows": local.read(target).count() if local.exists(target) else 0,
            }
        )
    print(cli.format_table(rows, ("dag_id", "run", "tasks", *SUMMARY_COLUMNS, "target_rows")))


class DemoScheduler:
    """The monitors' view of Airflow for the demo: a triggered DAG runs at once with dag.test()."""

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        from dataplatform.factories.loader import loader_dags_from_snapshot

        run = loader_dags_from_snapshot(only=dag_id)[dag_id].test(run_conf=conf or None)
        print(f"  {dag_id}: triggered run {run.run_id} -> {run.state}")
        return run.run_id

    def fail_run(self, dag_id: str, run_id: str) -> bool:
        return False

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        return None


def alert_receiver() -> str:
    """A webhook on 127.0.0.1 that prints the alerts it receives (the demo's on-call channel)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            alert = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            print(f"  [on-call webhook] {alert['title']}", flush=True)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/oncall"


def failure_analysed_and_retried(repo: ControlRepository, source_url: str) -> None:
    from dataplatform.factories.loader import loader_dags_from_snapshot
    from dataplatform.notifications.pager import AlertPager
    from include.control import snapshot
    from include.dataloader.monitors.analysis import RuleAnalyzer
    from include.dataloader.monitors.failed import analyze_failed

    repo.update("demo.orders", {"alert_target": alert_receiver()})
    snapshot.write(snapshot.default_path(), repo.list())  # what the snapshot DAG does every minute
    unreachable = "postgresql://postgres@127.0.0.1:9/demo_source"  # nothing listens there
    os.environ["AIRFLOW_CONN_DEMO_POSTGRES"] = airflow_connection(unreachable)
    run = loader_dags_from_snapshot(only="demo.orders")["demo.orders"].test()
    row = repo.get("demo.orders")
    print(f"demo.orders run {run.state}: {row['last_status']}: {(row['last_status_message'] or '')[:110]}")
    os.environ["AIRFLOW_CONN_DEMO_POSTGRES"] = airflow_connection(source_url)  # the source is back

    print("dataloader_monitor_failed:")
    for result in analyze_failed(repo, RuleAnalyzer(), DemoScheduler(), AlertPager(), max_retries=3):
        print(
            f"  {result['control_key']}: {result['decision']} ({result['confidence']:.0%}) {result['reason']}; "
            f"retry {result.get('retry_count')}"
        )
    row = repo.get("demo.orders")
    print(
        f"demo.orders now: {row['last_status']}, retry_count {row['retry_count']}, watermark {row['incremental_value']}"
    )


def drift_caught(repo: ControlRepository, warehouse: Path) -> None:
    """Change the bronze table behind the loader's back (delta-rs), then verify it from a shell."""
    import deltalake

    table = deltalake.DeltaTable(str(warehouse / "bronze" / "demo" / "orders"))
    table.delete("order_id = 42")
    table.update(updates={"status": "'tampered'"}, predicate="order_id = 43")
    print("bronze demo.orders: order 42 deleted, order 43's status changed (delta-rs, outside the loader)")
    code = cli.main(["verify", "demo.orders"])
    print(f"dataloader verify demo.orders -> exit {code} (1: the bronze table differs from its source)")
    last = next(r for r in reversed(repo.runs("demo.orders")) if r["verify_status"])
    result = last["verify_result"]
    print(
        f"historical_metadata run {last['run_id']}: verify_status {last['verify_status']}, "
        f"missing in bronze {result['keys']['missing_in_target']}, different {result['keys']['different']}"
    )


def compare_prod_and_dr(server_url: str) -> Path:
    from include.demo import sentinel_data
    from include.sentinel.config import load_config
    from include.sentinel.run import REPORT_FIELDS, run_comparison

    prod = postgres.create_database(server_url, "sentinel_prod", replace=True)
    dr = postgres.create_database(server_url, "sentinel_dr", replace=True)
    os.environ.update({"SENTINEL_PROD_URL": prod, "SENTINEL_DR_URL": dr})
    sentinel_data.create(prod, dr)
    config = load_config(Path(__file__).parent / "sentinel_config.yaml")
    output = ROOT / config.output_dir
    shutil.rmtree(output, ignore_errors=True)
    from dataclasses import replace

    rows = run_comparison(replace(config, output_dir=output))
    print("sentinel compare (the CLI's engine):")
    print(cli.format_table(rows, [f for f in REPORT_FIELDS if f not in ("error",)]))

    os.environ["SENTINEL_ARTIFACTS_ROOT"] = f"file://{LOCAL / 'sentinel_airflow'}"
    shutil.rmtree(LOCAL / "sentinel_airflow", ignore_errors=True)
    from dataplatform.factories.sentinel import sentinel_dags

    run = sentinel_dags()["sentinel_demo_prod_vs_dr"].test()
    tasks = sorted({ti.task_id for ti in run.get_task_instances()})
    report = next(ti for ti in run.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    print(f"\nDAG sentinel_demo_prod_vs_dr: {run.state} ({', '.join(tasks)}): {report}")
    for row in rows:
        if row.get("sql_file"):
            print(f"\n{Path(row['sql_file']).name}:")
            print("\n".join("  " + line for line in Path(row["sql_file"]).read_text().splitlines()[:12]))
    return output


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    banner("embedded PostgreSQL")
    server = postgres.start(LOCAL / "pgdata", keep=True)
    control_url = postgres.create_database(server.get_uri(), "dataloader_control", replace=True)
    source_url = postgres.create_database(server.get_uri(), "demo_source", replace=True)
    os.environ[CONTROL_DB_URL_ENV] = control_url
    os.environ["DEMO_SOURCE_URL"] = source_url  # the demo dbconfig names this secret (scope: env)
    warehouse = Path(os.environ.setdefault(WAREHOUSE_ENV, str(LOCAL / "warehouse")))
    shutil.rmtree(warehouse / "bronze", ignore_errors=True)  # every demo starts from empty targets
    print(f"control database: {control_url}\nsource database:  {source_url}")

    banner("control database schema")
    migrate.upgrade(control_url)
    print(f"migrated to revision {migrate.current_revision(control_url)}")

    banner("demo control table")
    cli.main(["tables", "import", str(CONTROL_TABLES)])
    cli.main(["tables", "list"])

    banner("demo source tables")
    source_data.create(source_url)
    print("PostgreSQL: customers, orders, events, daily_metrics, products, transactions")
    os.environ["DEMO_CLICKHOUSE_URL"] = clickhouse_source.create(LOCAL / "clickhouse")
    print(f"ClickHouse (chdb, {os.environ['DEMO_CLICKHOUSE_URL']}): shop.order_lines")

    banner("Airflow (embedded metadata database)")
    home = configure_airflow(control_url, source_url)
    print(f"AIRFLOW_HOME={home}")
    repo = ControlRepository(control_url, change_source="demo")

    banner("first run of every loader DAG (Spark on Sail, Delta)")
    run_dags(repo, warehouse, "1")

    banner("source changes, then the second run of every loader DAG")
    source_data.change(source_url)
    clickhouse_source.change(LOCAL / "clickhouse")
    run_dags(repo, warehouse, "2")

    banner("an injected failure, analysed by the failed-load monitor and retried")
    failure_analysed_and_retried(repo, source_url)

    banner("load verification: the verify tasks above, then a drift injected into a bronze table")
    print(
        cli.format_table(
            [r for r in repo.runs() if r["verify_status"]],
            ("control_key", "run_id", "load_status", "verify_status", "verified_at"),
        )
    )
    drift_caught(repo, warehouse)

    banner("control table after the runs")
    cli.main(["tables", "list"])

    banner("historical_metadata")
    print(
        cli.format_table(
            repo.runs(), ("control_key", "run_id", "load_status", "rows_processed", "load_start_time", "load_end_time")
        )
    )

    banner("DB Sentinel: prod vs DR")
    sentinel_files = compare_prod_and_dr(server.get_uri())

    banner("where the results are")
    print(f"Delta tables:       {warehouse / 'bronze' / 'demo'}")
    print(f"control database:   {control_url}")
    print(f"Airflow home:       {home} (metadata database, task logs)")
    print(f"Verify reports:     {warehouse.parent / 'artifacts' / 'verify'} (dataloader verify's CSV reports)")
    print(f"Sentinel output:    {sentinel_files} (sync SQL, summaries, CSV report, audit log)")
    print(f"Sentinel DAG run:   {LOCAL / 'sentinel_airflow'} (plans, chunk results, sync SQL, report)")
    print(f"PostgreSQL data:    {LOCAL / 'pgdata'} (the server stops when the demo exits)")
    return 0
