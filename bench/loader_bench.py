"""Loader benchmark: full loads at several table sizes and an incremental merge, with memory, side by side.

Peers, all in the same run on the same PostgreSQL tables:
- the floor: PostgreSQL's binary COPY of the table drained by the client (no conversion, no write);
- this loader on the local engine: the `full` strategy (ADBC batches -> Parquet staging -> Sail -> one
  Delta commit) and the `incremental` strategy (changed rows merged by primary key);
- dlt: `sql_table` (pyarrow backend) into Delta on the filesystem destination, replace and merge.

    .venv/bin/python bench/loader_bench.py --sizes 5000000 20000000 --changes 1000000

``--skip full`` measures only the merge (its targets are still filled first, untimed).

Every measured load runs in a child process of its own; the parent samples the resident memory of that
child's whole process tree (Sail runs in-process, inside the child) and reports its peak, beside the
seconds the child measured around the load call. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
warnings.simplefilter("ignore")


# -- the source ---------------------------------------------------------------------------------------


def create_source(url: str, table: str, rows: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            f"""CREATE TABLE {table} (id bigint PRIMARY KEY, name text, amount numeric(12,2),
                                      updated_at timestamp(6) NOT NULL, category int)"""
        )
        conn.execute(
            f"""INSERT INTO {table} SELECT g, md5(g::text), (g %% 100000) / 100.0,
                       timestamp '2024-01-01' + g * interval '1 second', g %% 7
                FROM generate_series(1, %s) g""",
            (rows,),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {table}")


def change_rows(url: str, table: str, rows: int, changes: int) -> None:
    """Move ``changes`` rows, spread over the whole table, to a later timestamp (the merge's input)."""
    step = rows // changes
    with psycopg.connect(url) as conn:
        conn.execute(
            f"""UPDATE {table} SET amount = amount + 1,
                       updated_at = timestamp '2030-01-01' + id * interval '1 microsecond'
                WHERE id %% %s = 0""",
            (step,),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {table}")


# -- the loads, each run in a child process ------------------------------------------------------------


def copy_floor(url: str, table: str, root: Path, watermark: str | None) -> dict:
    size = 0
    start = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
        for chunk in copy:
            size += len(chunk)  # the floor only drains the stream
    return {"seconds": time.perf_counter() - start, "bytes": size}


def ours(url: str, table: str, root: Path, watermark: str | None, strategy: str) -> dict:
    from include.control.model import ControlRow
    from include.dataloader.dialects import ConnectionParams, dialect_for
    from include.dataloader.queries import Cursor
    from include.dataloader.readers import local_reader
    from include.dataloader.source import SourceTable
    from include.dataloader.strategies import full, incremental
    from include.dataloader.strategies.base import LoadContext, committed_watermark
    from include.dataloader.target import LocalWarehouse
    from include.local import spark as local_spark

    spark = local_spark.session()
    warehouse = LocalWarehouse(spark, root)
    row = ControlRow.from_mapping(
        {
            "control_key": f"bench.{table}",
            "db_config_key": "bench",
            "source_schema": "public",
            "source_table_name": table,
            "destination_schema": "bench",
            "destination_table_name": f"{table}_{'full' if strategy == 'full' else 'incremental'}",
            "load_strategy": "full" if strategy == "full" else "incremental",
            "cron": "@daily",
            "incremental_column": "updated_at",
            "incremental_type": "timestamp",
            "primary_key_columns": ["id"],
        }
    )
    dialect = dialect_for("postgresql")
    reader = local_reader(spark, dialect, ConnectionParams(url=url), warehouse.extract_staging())
    extract = {"seconds": 0.0}
    staged = reader._staged

    def timed_staging(head, rest):  # the extraction: driver batches written to the staging files
        start = time.perf_counter()
        try:
            return staged(head, rest)
        finally:
            extract["seconds"] += time.perf_counter() - start

    reader._staged = timed_staging
    ctx = LoadContext(SourceTable(row, dialect, reader), warehouse)
    start = time.perf_counter()
    try:
        # "seed": the incremental's target filled by a full load (not timed)
        summary = incremental.load(ctx, watermark) if strategy == "incremental" else full.load(ctx)
    finally:
        reader.close()
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "extract_seconds": extract["seconds"], "rows": summary.rows_read}
    result["watermark"] = summary.watermark or committed_watermark(ctx, Cursor("updated_at", "timestamp"))
    result.update(inserted=summary.inserted, updated=summary.updated)
    return result


def dlt_load(url: str, table: str, root: Path, watermark: str | None, disposition: str) -> dict:
    import dlt
    from dlt.sources.sql_database import sql_table

    sa_url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{table}_{disposition}",
        pipelines_dir=str(root / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=str(root / "delta")),
        dataset_name=f"{table}_{disposition}",
    )
    start = time.perf_counter()
    if disposition == "replace":
        source = sql_table(credentials=sa_url, table=table, backend="pyarrow")
        pipeline.run(source, write_disposition="replace", table_format="delta")
    else:
        source = sql_table(
            credentials=sa_url, table=table, backend="pyarrow", incremental=dlt.sources.incremental("updated_at")
        )
        source.apply_hints(primary_key="id")
        pipeline.run(source, write_disposition="merge", table_format="delta")
    return {"seconds": time.perf_counter() - start}


LOADS = {
    "floor": copy_floor,
    "ours-full": lambda *a: ours(*a, strategy="full"),
    "ours-seed": lambda *a: ours(*a, strategy="seed"),
    "ours-incremental": lambda *a: ours(*a, strategy="incremental"),
    "dlt-replace": lambda *a: dlt_load(*a, disposition="replace"),
    "dlt-merge": lambda *a: dlt_load(*a, disposition="merge"),
}


def child(argv: list[str]) -> None:
    kind, url, table, root, watermark = argv
    result = LOADS[kind](url, table, Path(root), watermark or None)
    print("RESULT " + json.dumps(result, default=str), flush=True)


def measured(kind: str, url: str, table: str, root: Path, watermark: str | None = None) -> dict:
    """Run one load in a child process; its seconds, and the peak RSS of its process tree (sampled)."""
    command = [sys.executable, __file__, "--child", kind, url, table, str(root), watermark or ""]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    tree = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            members = [tree, *tree.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in members if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    out = process.stdout.read()
    if process.returncode:
        raise RuntimeError(f"{kind} on {table} failed ({process.returncode}):\n{out}")
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    result["peak_rss_mb"] = peak / 2**20
    print(f"  {kind:18} {table:22} {result['seconds']:8.2f} s  peak RSS {result['peak_rss_mb']:7.0f} MB", flush=True)
    return result


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--changes", type=int, default=100_000, help="rows changed before the merge (largest size)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["dlt", "merge", "full"])
    args = parser.parse_args()

    from include.local import postgres

    work = Path(tempfile.mkdtemp(prefix="loader-bench-"))
    server = postgres.start(work / "pg")
    url = postgres.create_database(server.get_uri(), "bench")
    tables = {size: f"bench_orders_{size}" for size in args.sizes}
    for size, table in tables.items():
        started = time.perf_counter()
        create_source(url, table, size)
        print(f"created {table} in {time.perf_counter() - started:.0f} s", flush=True)

    results: dict[tuple[str, int], dict] = {}
    for size, table in tables.items():
        if "full" in args.skip:
            break
        results["floor", size] = measured("floor", url, table, work / "floor")
        results["ours-full", size] = measured("ours-full", url, table, work / "ours")
        if "dlt" not in args.skip:
            results["dlt-replace", size] = measured("dlt-replace", url, table, work / "dlt")

    largest, table = max(args.sizes), tables[max(args.sizes)]
    if "merge" not in args.skip:
        seed = measured("ours-seed", url, table, work / "ours")
        if "dlt" not in args.skip:
            measured("dlt-merge", url, table, work / "dlt")  # dlt's first run: its incremental state
        change_rows(url, table, largest, args.changes)
        results["ours-incremental", largest] = measured(
            "ours-incremental", url, table, work / "ours", seed["watermark"]
        )
        if "dlt" not in args.skip:
            results["dlt-merge", largest] = measured("dlt-merge", url, table, work / "dlt")

    print("\n| measurement | rows | seconds | peak RSS (MB) |\n|---|---|---|---|")
    names = {
        "floor": "copy floor (binary COPY to client)",
        "ours-full": "full load: this loader",
        "dlt-replace": "full load: dlt",
        "ours-incremental": f"incremental merge of {args.changes:,} rows: this loader",
        "dlt-merge": f"incremental merge of {args.changes:,} rows: dlt",
    }
    for (kind, size), result in results.items():
        print(f"| {names[kind]} | {size:,} | {result['seconds']:.2f} | {result['peak_rss_mb']:.0f} |")
    print()
    for size in args.sizes if "full" not in args.skip else []:
        ours_full, floor = results["ours-full", size], results["floor", size]
        line = f"- {size:,} rows: this loader / COPY floor {ours_full['seconds'] / floor['seconds']:.2f}"
        if ("dlt-replace", size) in results:
            line += f", this loader / dlt {ours_full['seconds'] / results['dlt-replace', size]['seconds']:.2f}"
        line += f"; extraction into staging {ours_full['extract_seconds']:.2f} s of {ours_full['seconds']:.2f} s"
        print(line)
    if len(args.sizes) > 1 and "full" not in args.skip:
        peaks = [results["ours-full", size]["peak_rss_mb"] for size in args.sizes]
        print(f"- peak RSS of the full load, largest / smallest size: {max(peaks) / min(peaks):.2f}")
    if ("ours-incremental", largest) in results:
        merge = results["ours-incremental", largest]
        line = f"- merge: {merge['rows']:,} rows read, {merge['inserted']:,} inserted, {merge['updated']:,} updated"
        line += f"; extraction {merge['extract_seconds']:.2f} s of {merge['seconds']:.2f} s"
        if ("dlt-merge", largest) in results:
            line += f"; this loader / dlt {merge['seconds'] / results['dlt-merge', largest]['seconds']:.2f}"
        print(line)
    server.cleanup()


if __name__ == "__main__":
    main()
