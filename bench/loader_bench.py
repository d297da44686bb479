"""Loader benchmark: a 1,000,000-row full load and a 100,000-row incremental merge, side by side.

Peers, all in the same run on the same PostgreSQL table:
- the floor: PostgreSQL's binary COPY of the table to the client (no conversion, no write);
- this loader: the `full` and `incremental` strategies (ADBC -> Arrow -> Spark on Sail -> Delta);
- dlt: `sql_table` (pyarrow backend) into Delta on the filesystem destination, replace and merge.

    .venv/bin/python bench/loader_bench.py [--rows 1000000] [--changes 100000] [--repeat 3]

Prints a Markdown table (median seconds of --repeat runs) for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import psycopg

from include.control.model import ControlRow
from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.readers import ArrowSourceReader, postgres_fetch
from include.dataloader.source import SourceTable
from include.dataloader.strategies import full, incremental
from include.dataloader.strategies.base import LoadContext
from include.dataloader.target import LocalWarehouse
from include.local import postgres
from include.local import spark as local_spark

warnings.simplefilter("ignore")


def timed(fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def create_source(url: str, rows: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            """CREATE TABLE bench_orders (id bigint PRIMARY KEY, name text, amount numeric(12,2),
                                          updated_at timestamp(6) NOT NULL, category int)"""
        )
        conn.execute(
            """INSERT INTO bench_orders SELECT g, md5(g::text), (g %% 100000) / 100.0,
                      timestamp '2024-01-01' + g * interval '1 second', g %% 7
               FROM generate_series(1, %s) g""",
            (rows,),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE bench_orders")


class ChangeSets:
    """Each call updates a fresh set of `changes` rows to a later timestamp (the incremental's input)."""

    def __init__(self, url: str, rows: int, changes: int):
        self.url, self.rows, self.changes, self.round = url, rows, changes, 0

    def __call__(self) -> None:
        self.round += 1
        step = self.rows // self.changes
        with psycopg.connect(self.url) as conn:
            conn.execute(
                """UPDATE bench_orders SET amount = amount + 1,
                          updated_at = timestamp '2030-01-01' + %s * interval '1 day' + id * interval '1 microsecond'
                   WHERE id %% %s = %s""",
                (self.round, step, self.round % step),
            )


def copy_floor(url: str) -> None:
    with psycopg.connect(url) as conn, conn.cursor().copy("COPY bench_orders TO STDOUT (FORMAT binary)") as copy:
        for _ in copy:
            pass


def ours(url: str, root: Path):
    spark = local_spark.session()
    warehouse = LocalWarehouse(spark, root)

    def context(strategy: str) -> LoadContext:
        row = ControlRow.from_mapping(
            {
                "control_key": f"bench.{strategy}",
                "db_config_key": "bench",
                "source_schema": "public",
                "source_table_name": "bench_orders",
                "destination_schema": "bench",
                "destination_table_name": f"orders_{strategy}",
                "load_strategy": strategy,
                "cron": "@daily",
                "incremental_column": "updated_at" if strategy == "incremental" else None,
                "incremental_type": "timestamp" if strategy == "incremental" else None,
                "primary_key_columns": ["id"],
            }
        )
        reader = ArrowSourceReader(spark, postgres_fetch(ConnectionParams(url=url)))
        return LoadContext(SourceTable(row, dialect_for("postgresql"), reader), warehouse)

    state = {"watermark": None}

    def full_load() -> None:
        full.load(context("full"))

    def incremental_load() -> None:
        state["watermark"] = incremental.load(context("incremental"), state["watermark"]).watermark

    return full_load, incremental_load


def dlt_peer(url: str, root: Path):
    import dlt
    from dlt.sources.sql_database import sql_table

    sa_url = url.replace("postgresql://", "postgresql+psycopg2://", 1)

    def pipeline(name: str):
        return dlt.pipeline(
            pipeline_name=f"bench_{name}",
            pipelines_dir=str(root / "pipelines"),
            destination=dlt.destinations.filesystem(bucket_url=str(root / "delta")),
            dataset_name=name,
        )

    replace = pipeline("replace")
    merge = pipeline("merge")

    def full_load() -> None:
        table = sql_table(credentials=sa_url, table="bench_orders", backend="pyarrow")
        replace.run(table, write_disposition="replace", table_format="delta")

    def incremental_load() -> None:
        table = sql_table(
            credentials=sa_url,
            table="bench_orders",
            backend="pyarrow",
            incremental=dlt.sources.incremental("updated_at"),
        )
        table.apply_hints(primary_key="id")
        merge.run(table, write_disposition="merge", table_format="delta")

    return full_load, incremental_load


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="loader-bench-"))
    server = postgres.start(work / "pg")
    url = postgres.create_database(server.get_uri(), "bench")
    create_source(url, args.rows)
    changes = ChangeSets(url, args.rows, args.changes)

    our_full, our_incremental = ours(url, work / "ours")
    dlt_full, dlt_incremental = dlt_peer(url, work / "dlt")
    our_incremental(), dlt_incremental()  # initial loads: the timed runs below merge into 1M rows
    our_full(), dlt_full()  # warm-up (first Spark plan, imports)

    results = {
        "copy floor (binary COPY to client)": timed(lambda: copy_floor(url), args.repeat),
        "full load: this loader": timed(our_full, args.repeat),
        "full load: dlt": timed(dlt_full, args.repeat),
        "incremental merge: this loader": timed(our_incremental, args.repeat, before=changes),
        "incremental merge: dlt": timed(dlt_incremental, args.repeat, before=changes),
    }
    floor = results["copy floor (binary COPY to client)"]
    print(f"\n{args.rows:,} rows, {args.changes:,} changed per incremental run, median of {args.repeat}\n")
    print("| measurement | seconds |\n|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} |")
    print()
    print(f"- full load, this loader / dlt: {results['full load: this loader'] / results['full load: dlt']:.2f}")
    print(f"- full load, this loader / COPY floor: {results['full load: this loader'] / floor:.2f}")
    print(f"- full load, dlt / COPY floor: {results['full load: dlt'] / floor:.2f}")
    ratio = results["incremental merge: this loader"] / results["incremental merge: dlt"]
    print(f"- incremental merge, this loader / dlt: {ratio:.2f}")
    server.cleanup()


if __name__ == "__main__":
    main()
