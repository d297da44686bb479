"""Load verification benchmark: verifying a PostgreSQL table against its bronze Delta table (local engine).

Measured in one run, in one process (Sail runs in-process), on the same table:
- the load: the ``full`` strategy of this loader (ADBC batches -> Parquet staging -> Sail -> one Delta commit);
- the floor: one MD5 aggregate scan of each side, both at once (PostgreSQL's own ``md5`` over the row's
  text; Spark SQL's ``md5`` over the Delta table's columns): what any row-level comparison must at least
  read, with no canonical text, no chunks and no differences located;
- the in-engine verification: ``include.dataloader.verification.verify(..., in_process=False)`` (DB
  Sentinel's ``compare_tables`` with checksums computed inside both engines), on the equal tables;
- the in-process floor: both sides read as Arrow at once and nothing else (the source through the
  loader's ADBC reader, the decimal as text as the verification reads it; the Delta table through
  delta-rs), what the in-process verification must read;
- the verification: ``verify`` as the verify task runs it (``in_process`` where it applies: both sides
  streamed as Arrow and hashed in this process, ``include/dataloader/verification/arrow.py``); and the
  same with the source read in two key ranges at once on two connections (``source_streams=2``), the two
  in turn first round by round.

    .venv/bin/python bench/verify_bench.py --rows 1000000 [--rounds 3]

Each round measures everything once, the load and the verification next to each other; the figures are
the medians of the rounds (a shared machine's load spikes hit single measurements).

Prints a Markdown table for bench/RESULTS.md. Goal: the verification under 0.5x the load's time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
warnings.simplefilter("ignore")

from include.local import postgres  # noqa: E402


def create_source(url: str, rows: int) -> None:
    """The loader benchmark's table shape: bigint key, text, numeric(12,2), timestamp, int."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """CREATE TABLE t (id bigint PRIMARY KEY, name text, amount numeric(12,2),
                               updated_at timestamp(6) NOT NULL, category int)"""
        )
        conn.execute(
            """INSERT INTO t SELECT g, md5(g::text), (g %% 100000) / 100.0,
                      timestamp '2024-01-01' + g * interval '1 second', g %% 7
               FROM generate_series(1, %s) g""",
            (rows,),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE t")


def control_row():
    from include.control.model import ControlRow

    return ControlRow.from_mapping(
        {
            "control_key": "bench.t",
            "db_config_key": "bench",
            "source_schema": "public",
            "source_table_name": "t",
            "destination_schema": "bench",
            "destination_table_name": "t",
            "load_strategy": "full",
            "cron": "@daily",
            "primary_key_columns": ["id"],
            "verify": True,
        }
    )


def load(url: str, root: Path) -> float:
    from include.dataloader.dialects import ConnectionParams, dialect_for
    from include.dataloader.readers import local_reader
    from include.dataloader.source import SourceTable
    from include.dataloader.strategies import full
    from include.dataloader.strategies.base import LoadContext
    from include.dataloader.target import LocalWarehouse
    from include.local import spark as local_spark

    warehouse = LocalWarehouse(local_spark.session(), root)
    dialect = dialect_for("postgresql")
    reader = local_reader(local_spark.session(), dialect, ConnectionParams(url=url), warehouse.extract_staging())
    start = time.perf_counter()
    try:
        full.load(LoadContext(SourceTable(control_row(), dialect, reader), warehouse))
    finally:
        reader.close()
    return time.perf_counter() - start


def floor(url: str, root: Path) -> tuple[float, float, float]:
    """One MD5 aggregate scan of each side, both at once; and each one's own seconds."""
    from include.local import spark as local_spark

    spark = local_spark.session()
    path = root / "bronze" / "bench" / "t"

    def source() -> float:
        start = time.perf_counter()
        with psycopg.connect(url) as conn:
            conn.execute(
                "SELECT count(*), sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint) FROM t"
            ).fetchone()
        return time.perf_counter() - start

    def bronze() -> float:
        start = time.perf_counter()
        text = "concat_ws('|', id, name, CAST(amount AS STRING), CAST(updated_at AS STRING), category)"
        spark.sql(
            f"SELECT count(*), sum(CAST(conv(substr(md5({text}), 1, 15), 16, 10) AS DECIMAL(20, 0))) "
            f"FROM delta.`{path}`"
        ).collect()
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(source), pool.submit(bronze)
        source_seconds, bronze_seconds = a.result(), b.result()
    return time.perf_counter() - start, source_seconds, bronze_seconds


def arrow_floor(url: str, root: Path) -> float:
    """Both sides read as Arrow batches at once, nothing computed: the in-process path's reading."""
    from deltalake import DeltaTable

    from include.dataloader.dialects import ConnectionParams, dialect_for

    path = root / "bronze" / "bench" / "t"
    names = ["id", "name", "amount", "updated_at", "category"]

    def source() -> int:
        # as the verification reads it: the decimal as the server's text (verification.arrow.source_scan)
        query = 'SELECT "id", "name", CAST("amount" AS TEXT) AS "amount", "updated_at", "category" FROM "public"."t"'
        return sum(b.num_rows for b in dialect_for("postgresql").arrow_batches(ConnectionParams(url=url), query))

    def bronze() -> int:
        dataset = DeltaTable(str(path)).to_pyarrow_dataset()
        return sum(b.num_rows for b in dataset.to_batches(columns=names, batch_size=100_000))

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(source), pool.submit(bronze)
        assert a.result() == b.result()
    return time.perf_counter() - start


def verify(
    url: str, root: Path, out: Path, *, in_process: bool | None = None, source_streams: int | None = None
) -> tuple[float, dict]:
    from include.dataloader.dialects import ConnectionParams
    from include.dataloader.verification import local_bronze
    from include.dataloader.verification import verify as verify_load

    start = time.perf_counter()
    result = verify_load(
        control_row(),
        "postgresql",
        ConnectionParams(url=url),
        local_bronze(control_row(), root),
        run_id="bench",
        watermark=None,
        out_dir=out,
        in_process=in_process,
        source_streams=source_streams,
    )
    return time.perf_counter() - start, result.as_dict()


MEASURES = (
    ("load", "full load (this loader)"),
    ("verify", "verification (`verify`, in process)"),
    ("verify_two", "verification, the source in two key ranges at once (`source_streams=2`)"),
    ("arrow_floor", "in-process floor: both sides read as Arrow, at once"),
    ("engine", "in-engine verification (`verify(in_process=False)`)"),
    ("floor", "in-engine floor: one MD5 scan of each side, at once"),
)


def one_round(url: str, work: Path, rows: int, number: int) -> dict[str, float]:
    """Every measurement once, the load and the verification next to each other (a load spike from other
    work on the machine then hits both, not one)."""
    times = {"load": load(url, work / "warehouse")}
    # the two verifications in turn first (right after the load the page cache and the machine differ)
    first, second = ("verify", "verify_two") if number % 2 == 0 else ("verify_two", "verify")
    found = {}
    for name in (first, second):
        streams = 2 if name == "verify_two" else None
        times[name], found[name] = verify(url, work / "warehouse", work / f"artifacts-{name}", source_streams=streams)
    result, two = found["verify"], found["verify_two"]
    times["arrow_floor"] = arrow_floor(url, work / "warehouse")
    times["engine"], engine = verify(url, work / "warehouse", work / "artifacts-engine", in_process=False)
    times["floor"], times["source_scan"], times["bronze_scan"] = floor(url, work / "warehouse")
    # the tables are equal: anything else is a bug, not a figure
    assert result["status"] == two["status"] == engine["status"] == "equal", (result, two, engine)
    assert result["matching"] == two["matching"] == engine["matching"] == rows, (result, two, engine)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="every measurement this many times; medians")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    server = postgres.start(work / "pg")
    try:
        url = postgres.create_database(server.get_uri(), "verify_bench", replace=True)
        create_source(url, args.rows)
        from include.local import spark as local_spark

        local_spark.session()  # started before the clocks: Sail's start-up is no part of either
        rounds = [one_round(url, work, args.rows, number) for number in range(args.rounds)]
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)  # the warehouse and the server's folder: 130 MB at 1M rows
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"\n{args.rows:,} rows, equal on both sides; {args.rounds} rounds; seconds, median (each round)\n")
    print("| measurement | seconds |")
    print("|---|---|")
    for key, label in MEASURES:
        print(f"| {label} | {median[key]:.2f} ({' / '.join(f'{r[key]:.2f}' for r in rounds)}) |")
    scans = f"{median['source_scan']:.2f} / {median['bronze_scan']:.2f}"
    print(f"| (PostgreSQL scan alone / Delta scan on Sail alone) | {scans} |")
    ratios = " / ".join(f"{r['verify'] / r['load']:.2f}" for r in rounds)
    print(
        f"\n- verification / load: **{median['verify'] / median['load']:.2f}x** (each round {ratios}; goal: under 0.5x)"
    )
    print(f"- verification, source in two key ranges / load: {median['verify_two'] / median['load']:.2f}x")
    print(f"- in-engine verification / load: {median['engine'] / median['load']:.2f}x")
    print(f"- verification / in-process floor: {median['verify'] / median['arrow_floor']:.2f}x")
    print(f"- verification / in-engine floor: {median['verify'] / median['floor']:.2f}x")


if __name__ == "__main__":
    main()
