"""append_only's deduplication against a large target: the pruned anti-join vs the naive full anti-join.

A Delta target of --rows rows (written in id order, --files files, as appends leave it) and a staged
batch of --batch rows whose ids straddle the target's end (half already loaded, half new). In the same
run, on the same tables:
- naive: ``stg LEFT ANTI JOIN target ON <columns>`` (every file of the target read);
- this loader: ``matching.not_in_target``: those columns only, in the staged range of one of them (the
  cursor), so Delta's file statistics skip the files outside it.
Both by primary key and, as append_only does without a key, by every column.

    /work/main/.venv/bin/python bench/append_only_bench.py [--rows 20000000] [--batch 100000] [--repeat 3]

Prints a Markdown table (median seconds of --repeat runs) for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from include.dataloader.strategies.matching import not_in_target
from include.dataloader.target import LocalWarehouse, TableName
from include.local import spark as local_spark

warnings.simplefilter("ignore")


def median_seconds(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()

    spark = local_spark.session()
    root = args.root or Path(tempfile.mkdtemp(prefix="append-bench-"))
    warehouse = LocalWarehouse(spark, root)
    target, staging = TableName("bench", "events", "events"), TableName("bench", "events", "events__stg_000000000000")
    columns = [
        "id",
        "concat('payload-', CAST(id AS STRING)) AS payload",
        "timestamp_seconds(1704067200 + id) AS seen_at",
    ]
    started = time.perf_counter()
    warehouse.write(
        spark.range(0, args.rows, 1, args.files).selectExpr(*columns),
        target,
        mode="overwrite",
    )
    build = time.perf_counter() - started
    first = args.rows - args.batch // 2
    warehouse.write(
        spark.range(first, first + args.batch, 1, 1).selectExpr(*columns),
        staging,
        mode="overwrite",
    )
    tgt, stg = warehouse.ref(target), warehouse.ref(staging)

    expected = args.batch - args.batch // 2
    print(f"target: {args.rows:,} rows in {args.files} files (written in {build:.1f} s); batch {args.batch:,} rows")
    print("| deduplicated by | naive anti-join (s) | this loader (s) | new rows |")
    print("|---|---|---|---|")
    for label, keys in (("primary key `id`", ["id"]), ("every column (no key)", ["id", "payload", "seen_at"])):
        on = " AND ".join(f"s.{k} <=> t.{k}" for k in keys)
        naive, naive_rows = median_seconds(
            lambda on=on: spark.sql(f"SELECT s.* FROM {stg} s LEFT ANTI JOIN {tgt} t ON {on}").count(), args.repeat
        )
        pruned, pruned_rows = median_seconds(
            lambda keys=keys: not_in_target(warehouse, target, staging, keys, prefer="seen_at").count(), args.repeat
        )
        assert naive_rows == pruned_rows == expected, (label, naive_rows, pruned_rows)
        print(f"| {label} | {naive:.2f} | {pruned:.2f} | {pruned_rows:,} |")


if __name__ == "__main__":
    main()
