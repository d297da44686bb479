"""How long the loader DAG file takes to parse with 1,000 control rows in the snapshot.

Measured in one run: a full parse (what the dag-processor does every refresh) and a parse with the
parsing context set to one DAG (what a worker does when it runs one of that DAG's tasks).

    .venv/bin/python bench/dag_parse_bench.py [--rows 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STRATEGIES = ["full", "incremental", "append_only", "rolling", "check_and_load", "chunked_backfill"]


def rows(n: int) -> list[dict]:
    out = []
    for i in range(n):
        strategy = STRATEGIES[i % len(STRATEGIES)]
        row = {
            "control_key": f"bench.table_{i:04d}",
            "db_config_key": "bench_source",
            "db_type": ["sqlserver", "oracle", "postgresql", "snowflake", "clickhouse"][i % 5],
            "source_schema": "dbo",
            "source_table_name": f"table_{i}",
            "destination_schema": "bench",
            "destination_table_name": f"table_{i}",
            "load_strategy": strategy,
            "cron": f"{i % 60} * * * *",
            "is_active": True,
            "primary_key_columns": ["id"],
            "sla_minutes": 30,
            "alert_target": "https://hooks.example.invalid/x",
        }
        if strategy != "full":
            row |= {"incremental_column": "id", "incremental_type": "integer"}
        if strategy == "rolling":
            row |= {"rolling_column": "day", "rolling_days": 7, "incremental_column": None, "incremental_type": None}
        out.append(row)
    return out


def parse(only: str | None) -> tuple[float, int, dict]:
    from airflow.dag_processing.dagbag import DagBag

    if only:
        os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = only
    else:
        os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    start = time.perf_counter()
    bag = DagBag(dag_folder=str(ROOT / "dags" / "dataloader_tables.py"))
    return time.perf_counter() - start, len(bag.dags), bag.import_errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # set up here, not at import: a DAG bundle of the whole repository must be able to import this file
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    from include.control import snapshot

    path = Path(tempfile.mkdtemp()) / "snapshot.json"
    snapshot.write(path, rows(args.rows))
    os.environ[snapshot.SNAPSHOT_PATH_ENV] = str(path)

    parse(None)  # warm-up: imports
    full = [parse(None) for _ in range(args.repeat)]
    one = [parse("bench.table_0500") for _ in range(args.repeat)]
    assert all(n == args.rows and not errors for _, n, errors in full), full[0][2]
    assert all(n == 1 for _, n, _ in one)
    full_s = statistics.median(t for t, _, _ in full)
    one_s = statistics.median(t for t, _, _ in one)
    print(f"\n{args.rows} control rows, median of {args.repeat}\n")
    print("| parse | seconds | DAGs |\n|---|---|---|")
    print(f"| whole file (dag-processor) | {full_s:.3f} | {args.rows} |")
    print(f"| one DAG (task run, get_parsing_context) | {one_s:.3f} | 1 |")
    print(f"\n- whole file / one DAG: {full_s / one_s:.1f}")


if __name__ == "__main__":
    main()
