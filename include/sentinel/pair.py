"""One source table against one target table, each on its own engine: the seam the loader's verification
uses. It runs the sentinel's own machinery (TableComparator's chunked checksums, re-verification, the sync
file, the CSV report's row) on two connections given as callables, without a config file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from include.sentinel.codec import encode
from include.sentinel.compare import TableComparator, TableComparison
from include.sentinel.config import TableSpec
from include.sentinel.dialects import dialect_for
from include.sentinel.steps import report_csv, table_summary
from include.sentinel.sync import sync_sql
from include.sentinel.verify import reverify

DEFAULT_CHUNK_SIZE = 100_000  # rows per checksum chunk: a bronze table is compared whole, few chunks differ


@dataclass(frozen=True)
class Side:
    """One side of a pair. ``connect`` for Spark: ``include.sentinel.spark.local_connect(spark)`` (a Delta
    folder on the local engine: ``schema="delta"``, ``table`` its path) or ``databricks_connect(...)``
    (Databricks SQL: ``schema="catalog.schema"``); for PostgreSQL e.g. ``lambda: psycopg.connect(url)``."""

    db_type: str  # postgresql | oracle | sqlserver | snowflake | clickhouse | spark
    connect: Callable[[], Any]  # returns a DB-API-like connection
    schema: str | None  # spark: "catalog.schema", or "delta" with ``table`` a Delta folder's path
    table: str
    where: str | None = None  # boolean SQL in this side's dialect (the caller renders it with sqlglot)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[-80:]


def compare_tables(
    source: Side,
    target: Side,
    *,
    key: list[str],
    columns: list[str] | None,
    out_dir: Path,
    names: Mapping[str, str] | None = None,
    key_cap: int = 20,
    chunk_size: int | None = None,
    compare: Callable[[TableComparator], TableComparison] | None = None,
) -> dict:
    """Compare ``source`` with ``target`` row by row and re-verify the differences.

    ``def compare_tables(source: Side, target: Side, *, key: list[str], columns: list[str] | None,
    out_dir: Path, names: Mapping[str, str] | None = None, key_cap: int = 20, chunk_size: int | None = None,
    compare=None) -> dict``

    -> ``{"source_rows", "target_rows", "matching", "missing_in_target", "missing_in_source", "different",
    "in_flight", "keys": {"missing_in_target": [...], "missing_in_source": [...], "different": [...]},
    "report": str path of a CSV, "sync_sql": str path or None}``

    - ``key``: the key columns; ``columns``: the compared columns (None: every column both sides have,
      minus the key); both by the source's names. ``names``: source name -> the target's name of that
      column, where they differ (a loader's Delta-valid name: ``{"Order Id": "Order_Id"}``); absent: the
      same name. The target's queries use its names; keys, counts and the report are in the source's
      terms, the sync file in the target's. ``target.where`` is in the target's names.
    - Counts are after re-verification: a key whose rows changed again between the compare and the
      re-read is counted in ``in_flight`` only. ``matching`` is the target rows that equal their source row.
    - ``keys``: at most ``key_cap`` keys of each kind, each a list of its values (dates, timestamps,
      decimals and bytes as the sentinel's JSON tags: ``{"$date": "2024-01-31"}``).
    - ``report``: a one-row CSV (the sentinel's report columns) in ``out_dir``; ``sync_sql``: the sync file
      in the target's dialect when there are differences (for a ``spark`` target a note that the loader's
      reload is the fix, with the keys), else None.
    - Two different engines are compared in the portable canonical text (README, "canonical text"); text
      keys are then grouped in buckets of their hash, whole-number keys in key ranges.
    - ``compare``: how the differences are found (default ``TableComparator.compare``, in both engines);
      the loader's verification passes its in-process comparison. Re-verification and the files are the same.
    - Memory stays flat: checksums are computed in the databases, chunk by chunk; only the keys and rows
      of differing chunks come to Python.
    """
    portable = source.db_type != target.db_type
    spec = TableSpec(
        table_name=source.table,
        schema=source.schema,
        primary_key=tuple(key),
        chunk_size=chunk_size or DEFAULT_CHUNK_SIZE,
        columns=tuple(columns) if columns else None,
        where=source.where,
        target_schema=target.schema if target.schema is not None else "",
        target_table=target.table,
        target_where=target.where if target.where is not None else "",
        target_names=dict(names or {}),
    )
    comparator = TableComparator(
        spec,
        source.connect,
        target.connect,
        dialect=dialect_for(source.db_type, portable=portable),
        target_dialect=dialect_for(target.db_type, portable=portable),
    )
    comparison = compare(comparator) if compare else comparator.compare()
    verified = reverify(comparator, comparison)
    in_flight = set(verified.in_flight)
    found = {kind: [k for k in comparison.keys(kind) if k not in in_flight] for kind in KINDS}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    stamp = f"{now:%Y%m%d_%H%M%S_%f}"
    name = _slug(f"{source.table}")
    sync_path = None
    if verified.has_changes:
        sync_path = out_dir / f"sync_target_{name}_{stamp}.sql"
        sync_path.write_text(sync_sql(comparator, comparison, verified, session_id=f"pair-{stamp}", generated_at=now))
    comparator.close()
    row = {"table": spec.label, **table_summary(comparison, verified), "sql_file": str(sync_path or "")}
    row |= {kind: len(keys) for kind, keys in found.items()}
    row["matching"] = row["target_rows"] - row["missing_in_source"] - row["different"]
    report = out_dir / f"comparison_report_{name}_{stamp}.csv"
    report.write_text(report_csv([row]))
    return {
        "source_rows": row["source_rows"],
        "target_rows": row["target_rows"],
        "matching": row["matching"],
        **{kind: row[kind] for kind in KINDS},
        "in_flight": len(in_flight),
        "keys": {kind: [encode(list(k)) for k in keys[:key_cap]] for kind, keys in found.items()},
        "report": str(report),
        "sync_sql": str(sync_path) if sync_path else None,
    }


KINDS = ("missing_in_target", "missing_in_source", "different")
