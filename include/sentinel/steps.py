"""A comparison as separate steps, for an orchestrator that runs them as tasks on any worker:

    plan_tables  -> map items (small)          one per batch of chunks, at most ``max_items`` in all
    compare_batch(item) -> chunk summaries     each chunk's full result goes to the artifacts root
    finish_table(table) -> table summary       re-verify, sync SQL and summary files in the artifacts root
    write_report(summaries) -> report path

Everything big lives under ``root`` (a ``pathlib.Path``, or any path object with ``/``, ``exists``,
``read_text`` and ``write_text``, such as Airflow's ObjectStoragePath for s3://, abfs:// ...): the plan of
each table, each chunk's differing keys, the SQL. A chunk whose result is already there is not compared
again, so re-running a failed batch redoes only its unfinished chunks.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from include.sentinel.compare import Chunk, ChunkResult, TableComparator, TableComparison
from include.sentinel.config import CompareConfig, TableSpec
from include.sentinel.run import connector, report_csv, summary_text, table_summary
from include.sentinel.session import _decode_result, _encode, _encode_result, _key
from include.sentinel.sync import sync_sql
from include.sentinel.verify import reverify

MAX_MAP_ITEMS = 1000  # Airflow's max_map_length is 1024


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _slug(label: str) -> str:
    return label.replace(".", "_").upper()


def _spec(config: CompareConfig, table: str) -> TableSpec:
    for spec in config.tables:
        if table in (spec.label, spec.table_name):
            return spec
    raise KeyError(f"table {table!r} is not in the comparison config; it has: {[s.label for s in config.tables]}")


def _comparator(config: CompareConfig, spec: TableSpec) -> TableComparator:
    return TableComparator(
        spec,
        connector(config.source),
        connector(config.target),
        dialect=config.dialect(),
        max_threads=config.max_threads,
    )


def plan_tables(config: CompareConfig, root, *, tables: list[str] | None = None, max_items: int = MAX_MAP_ITEMS):
    """Plan every table, store the plans, and return the map items: ``{"table", "chunks": [indexes]}``.

    Tables with many chunks are batched so that all tables together make at most ``max_items`` items.
    """
    plans = {}
    for spec in config.tables:
        if tables and spec.label not in tables and spec.table_name not in tables:
            continue
        comparator = _comparator(config, spec)
        chunks = comparator.plan()
        plans[spec.label] = chunks
        document = {
            "table": spec.label,
            "columns": comparator.columns(),
            "chunks": [[_encode(c.lower), _encode(c.upper), [_encode(k) for k in c.segments]] for c in chunks],
        }
        _write(root / "plans" / f"{_slug(spec.label)}.json", json.dumps(document))
    total = sum(len(c) for c in plans.values())
    per_item = max(1, -(-total // max_items))
    return [
        {"table": table, "chunks": [c.index for c in chunks[i : i + per_item]]}
        for table, chunks in plans.items()
        for i in range(0, len(chunks), per_item)
    ]


def _plan(root, table: str) -> tuple[list[tuple[str, str]], list[Chunk]]:
    document = json.loads((root / "plans" / f"{_slug(table)}.json").read_text())
    chunks = [
        Chunk(i, _key(lo), _key(hi), tuple(_key(k) for k in segments))
        for i, (lo, hi, segments) in enumerate(document["chunks"])
    ]
    return [tuple(c) for c in document["columns"]], chunks


def _chunk_path(root, table: str, index: int):
    return root / "chunks" / _slug(table) / f"chunk_{index:05d}.json"


def compare_batch(config: CompareConfig, root, item: dict[str, Any]) -> list[dict[str, Any]]:
    """Compare a batch of chunks of one table; returns each chunk's small summary (counts, a few keys,
    the artifact holding all its keys)."""
    table = item["table"]
    columns, chunks = _plan(root, table)
    comparator = _comparator(config, _spec(config, table))
    summaries = []
    try:
        for index in item["chunks"]:
            path = _chunk_path(root, table, index)
            if path.exists():  # done by an earlier try of this task
                result = _decode_result(json.loads(path.read_text()))
            else:
                result = comparator.compare_chunk(chunks[index], columns)
                _write(path, json.dumps(_encode_result(result), default=str))
            summaries.append({"table": table, "artifact": str(path), **result.summary(key_cap=5)})
    finally:
        comparator.close()
    return summaries


def finish_table(
    config: CompareConfig, root, table: str, *, run_id: str, allow_deletes: bool = False, reverify_wait: float = 0
) -> dict[str, Any]:
    """Merge the table's chunk results, re-verify the differences, write the sync SQL and the summary."""
    spec = _spec(config, table)
    columns, chunks = _plan(root, table)
    results = [_decode_result(json.loads(_chunk_path(root, table, c.index).read_text())) for c in chunks]
    comparison = TableComparison(spec, [tuple(c) for c in columns], results, sum(r.seconds for r in results))
    comparator = _comparator(config, spec)
    verified = reverify(comparator, comparison, wait_seconds=reverify_wait)
    summary: dict[str, Any] = {"table": spec.label, **table_summary(comparison, verified)}
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%d_%H%M%S")
    if verified.has_changes:
        sql = sync_sql(
            comparator, comparison, verified, session_id=run_id, generated_at=now, allow_deletes=allow_deletes
        )
        path = root / f"sync_target_{_slug(spec.label)}_{stamp}_{run_id[-8:]}.sql"
        _write(path, sql)
        summary["sql_file"] = str(path)
    _write(root / f"comparison_summary_{_slug(spec.label)}_{stamp}.txt", summary_text(summary))
    _write(
        root / "verified" / f"{_slug(spec.label)}.json",
        json.dumps({k: [_encode(key) for key in keys] for k, keys in asdict(verified).items()}),
    )
    return summary


def write_report(root, summaries: list[dict[str, Any]]) -> str:
    path = root / f"comparison_report_{datetime.now(UTC):%Y%m%d_%H%M%S}.csv"
    _write(path, report_csv(summaries))
    return str(path)


__all__ = ["ChunkResult", "compare_batch", "finish_table", "plan_tables", "write_report"]
