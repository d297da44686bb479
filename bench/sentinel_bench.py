"""DB Sentinel benchmark: finding the differences between two copies of a table, side by side.

Measured in one run, on two PostgreSQL databases of the same server:
- this engine (checksums per chunk inside both databases, per-row hashes only for differing chunks);
- reladiff 0.6.0 with its defaults (hashdiff: checksum bisection pushed into the databases);
- naive: fetch every row of both tables and hash them in Python (what the seeds' BatchFetcher does);
- the floor: one checksum scan of each table, both at once (no chunks, no differences located).

    .venv/bin/python bench/sentinel_bench.py [--rows 1000000] [--percent 0.01 1 10] [--rounds 7]
    .venv/bin/python bench/sentinel_bench.py --collations [--rows 1000000]

The engine and the floor run ``--rounds`` times, alternating, and their medians are compared: the same
query's CPU time varies by a quarter from run to run on a shared machine, which one measurement of each
would report as the engine's. Each measurement starts once the previous one's server processes have exited
(``settled``). reladiff and the naive fetch run once (they take ten times as long).

``--collations``: a text key on Debian's PostgreSQL (it has ICU), once with both databases in libc C.UTF-8
(key ranges) and once with the target database's default an ICU locale (key-hash buckets), each against
the floor in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from include.local import postgres
from include.sentinel.compare import TableComparator
from include.sentinel.config import TableSpec
from include.sentinel.dialects.postgres import PostgresSentinel

warnings.simplefilter("ignore")
COLUMNS = [("name", "text"), ("amount", "numeric"), ("updated_at", "timestamp without time zone")]


def create(url: str, rows: int, *, text_key: bool = False) -> None:
    with psycopg.connect(url) as conn:
        kind, key = ("text", "upper(substr(md5(g::text), 1, 4)) || md5(g::text)") if text_key else ("int", "g")
        conn.execute(f"CREATE TABLE t (id {kind} PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamp)")
        conn.execute(
            f"INSERT INTO t SELECT {key}, md5(g::text), g * 1.5, timestamp '2024-01-01' + g * interval '1 second' "
            "FROM generate_series(1, %s) g",
            (rows,),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE t")
        conn.execute("CHECKPOINT")  # the load's dirty pages written now, not during the first measurement


def drift(url: str, rows: int, percent: float) -> int:
    every = max(1, round(100 / percent))
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE t SET name = 'x' WHERE amount / 1.5 %% %s = 7 %% %s", (every, every))
    return len(range(7 % every or every, rows + 1, every))


def undo(source: str, target: str) -> None:
    with psycopg.connect(target) as conn:
        conn.execute("UPDATE t SET name = md5((amount / 1.5)::int::text) WHERE name = 'x'")


def ours(source: str, target: str) -> int:
    spec = TableSpec(table_name="t", primary_key=("id",), chunk_size=10_000)
    # the engine's default of 4 threads (a config's max_threads), as reladiff runs with its defaults
    comparator = TableComparator(spec, lambda: psycopg.connect(source), lambda: psycopg.connect(target))
    return len(comparator.compare().keys("different"))


def reladiff_peer(source: str, target: str) -> int:
    import reladiff

    os.environ["PGHOST"] = source.split("host=")[1]  # sqeleton drops URI query arguments
    extra = tuple(name for name, _ in COLUMNS)
    a = reladiff.connect_to_table(
        f"postgresql://postgres@/{source.split('/')[3].split('?')[0]}", "t", "id", extra_columns=extra
    )
    b = reladiff.connect_to_table(
        f"postgresql://postgres@/{target.split('/')[3].split('?')[0]}", "t", "id", extra_columns=extra
    )
    return len({key for _, key in ((sign, row[0]) for sign, row in reladiff.diff_tables(a, b))})


def naive(source: str, target: str) -> int:
    def hashes(url):
        with psycopg.connect(url) as conn, conn.cursor(name="all") as cur:
            cur.itersize = 50_000
            cur.execute("SELECT id, name, amount, updated_at FROM t")
            return {row[0]: hashlib.md5(repr(row[1:]).encode()).hexdigest() for row in cur}

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(hashes, (source, target))
    return sum(1 for k in a if k in b and a[k] != b[k])


def floor(source: str, target: str) -> int:
    sql, params = PostgresSentinel().checksum_sql("t", COLUMNS, ["id"], None, None, None)

    def scan(url):
        with psycopg.connect(url) as conn:
            return conn.execute(sql, params).fetchone()

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(scan, (source, target))
    return int(a != b)


def settled(url: str) -> None:
    """Wait (up to 5 s) until the server runs no other backend or worker: the previous measurement's
    connections close asynchronously, and their exit would be counted in the next one's time."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(100):
            others = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND backend_type IN ('client backend', 'parallel worker')"
            ).fetchone()[0]
            if not others:
                return
            time.sleep(0.05)


def timed(fn, *args) -> tuple[float, int]:
    settled(args[0])
    start = time.perf_counter()
    found = fn(*args)
    return time.perf_counter() - start, found


def collations(rows: int, percent: float) -> None:
    """The same text-keyed table, equal collations vs a target database whose default is ICU en-US."""
    from tests.sentinel.icu import start_icu_server

    base = Path(tempfile.mkdtemp(prefix="sentinel-bench-icu-"))
    url, stop = start_icu_server(base, shared_buffers="512MB")  # the table stays in the server's buffers
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for name, options in (("prod", ""), ("dr_same", ""), ("dr_icu", "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")):
                conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C.UTF-8' {options}")
        urls = {name: url.replace("/postgres?", f"/{name}?") for name in ("prod", "dr_same", "dr_icu")}
        for db in urls.values():
            create(db, rows, text_key=True)
        print(f"\n{rows:,} rows per side, text key, {percent}% different\n")
        print("| target collation | measurement | seconds | differences found |\n|---|---|---|---|")
        for name, label in (("dr_same", "libc C.UTF-8 (as the source)"), ("dr_icu", "ICU en-US database default")):
            expected = drift(urls[name], rows, percent)
            engine, found = timed(ours, urls["prod"], urls[name])
            print(f"| {label} | this engine | {engine:.2f} | {found:,} of {expected:,} |", flush=True)
            scan, _ = timed(floor, urls["prod"], urls[name])
            print(f"| {label} | floor (one checksum scan each) | {scan:.2f} | |")
            print(f"| {label} | this engine / floor | {engine / scan:.2f}x | |", flush=True)
    finally:
        stop()
        shutil.rmtree(base, ignore_errors=True)  # three databases of ``rows`` rows: gigabytes at 5,000,000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--percent", type=float, nargs="+", default=[0.01])
    parser.add_argument("--skip", nargs="*", default=[], help="peers to leave out: reladiff naive")
    parser.add_argument("--rounds", type=int, default=7, help="runs of this engine and of the floor, alternating")
    parser.add_argument("--collations", action="store_true", help="a text key, equal vs different collations")
    args = parser.parse_args()
    if args.collations:
        collations(args.rows, args.percent[0])
        return

    server = postgres.start(Path(tempfile.mkdtemp(prefix="sentinel-bench-")) / "pg")
    source = postgres.create_database(server.get_uri(), "prod")
    target = postgres.create_database(server.get_uri(), "dr")
    for url in (source, target):
        create(url, args.rows)
    peers = {
        "reladiff (hashdiff defaults)": reladiff_peer,
        "naive fetch and hash": naive,
    }
    print(f"\n{args.rows:,} rows per side; this engine and the floor: medians of {args.rounds} rounds, alternating\n")
    print("| differences | measurement | seconds | differences found |\n|---|---|---|---|")
    for percent in args.percent:
        expected = drift(target, args.rows, percent)
        results = {}
        rounds: dict[str, list[float]] = {"this engine": [], "floor (one checksum scan each)": []}
        for _ in range(args.rounds):
            for name, fn in (("this engine", ours), ("floor (one checksum scan each)", floor)):
                seconds, found = timed(fn, source, target)
                rounds[name].append(seconds)
                if name == "this engine" and found != expected:
                    raise SystemExit(f"this engine found {found:,} differences of {expected:,}")
        for name, times in rounds.items():
            results[name] = statistics.median(times)
            shown = ", ".join(f"{t:.2f}" for t in times)
            print(f"| {percent}% ({expected:,}) | {name}: median of {shown} | {results[name]:.2f} | |", flush=True)
        for name, fn in peers.items():
            if any(s in name for s in args.skip):
                continue
            seconds, found = timed(fn, source, target)
            results[name] = seconds
            print(f"| {percent}% ({expected:,}) | {name} | {seconds:.2f} | {found:,} |", flush=True)
        if "reladiff (hashdiff defaults)" in results:
            ratio = results["reladiff (hashdiff defaults)"] / results["this engine"]
            print(f"| {percent}% | reladiff / this engine | {ratio:.2f}x | |")
        ratio = results["this engine"] / results["floor (one checksum scan each)"]
        per_round = ", ".join(f"{e / f:.2f}x" for e, f in zip(*rounds.values(), strict=True))
        print(f"| {percent}% | this engine / floor | {ratio:.2f}x | rounds: {per_round} |")
        undo(source, target)
    server.cleanup()


if __name__ == "__main__":
    main()
