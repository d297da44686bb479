"""The comparison as steps, the one driver of both the CLI and the DAG:

    plan_tables(config, layout)          -> map items      validate, plan each table (COMPARISON_START)
    compare_batch(config, layout, item)  -> chunk summaries each chunk's result to the artifacts (CHUNK)
    finish_table(config, layout, table)  -> table summary  re-verify, sync SQL, summary (COMPARISON_END)
    write_report(layout, summaries)      -> report path

The CLI runs them in one process over a local folder that is also its session (``SessionLayout``: a
resumed session finds its plans and chunk results there); the DAG runs them as tasks on any worker over the
run's folder of the artifacts root (``Layout``: a local path or Airflow's ObjectStoragePath for s3://,
abfs:// ...). Validation, audit, redaction and progress happen here, once. A chunk whose result is already
stored is not compared again, and a table's stored plan is reused, so a re-run redoes only unfinished work.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from include.sentinel.audit import Audit
from include.sentinel.codec import decode_plan, decode_result, encode, encode_plan, encode_result
from include.sentinel.compare import ChunkResult, CompareError, TableComparator, TableComparison
from include.sentinel.config import CompareConfig, ConfigError, TableSpec
from include.sentinel.connect import connector, validate
from include.sentinel.session import write_atomically
from include.sentinel.sync import sync_sql
from include.sentinel.verify import Verified, reverify

log = logging.getLogger(__name__)
MAX_MAP_ITEMS = 1000  # Airflow's max_map_length is 1024
REPORT_FIELDS = (
    "table",
    "status",
    "source_rows",
    "target_rows",
    "matching",
    "missing_in_target",
    "missing_in_source",
    "different",
    "in_flight",
    "chunks",
    "chunks_differing",
    "seconds",
    "sql_file",
    "error",
    "chunking",
    "key_collations",
)


def _slug(label: str) -> str:
    return label.replace(".", "_").upper()


@dataclass(frozen=True)
class Layout:
    """Where one run's artifacts go under ``root``; ``run_id`` names the run (the DAG run id)."""

    root: Any
    run_id: str

    @property
    def short_id(self) -> str:
        return self.run_id.replace(":", "_").replace("+", "_")[-8:]

    def plan(self, table: str):
        return self.root / "plans" / f"{_slug(table)}.json"

    def chunk(self, table: str, index: int):
        return self.root / "chunks" / _slug(table) / f"chunk_{index:05d}.json"

    def verified(self, table: str):
        return self.root / "verified" / f"{_slug(table)}.json"

    def audit(self):
        return self.root / f"audit_{self.run_id.replace(':', '_').replace('+', '_')}.jsonl"

    def file(self, name: str):
        return self.root / name


class SessionLayout(Layout):
    """The CLI's: sessions share the output folder; a session's plans and chunk results are its checkpoints,
    ``checkpoints/<id8>_<SCHEMA_TABLE>_chunk_<n>.json`` (the seeds' names) beside ``..._plan.json``."""

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    def _checkpoint(self, table: str, name: str):
        return self.root / "checkpoints" / f"{self.short_id}_{table.replace('.', '_')}_{name}.json"

    def plan(self, table: str):
        return self._checkpoint(table, "plan")

    def chunk(self, table: str, index: int):
        return self._checkpoint(table, f"chunk_{index}")

    def verified(self, table: str):
        return self._checkpoint(table, "verified")


def _write(path, text: str) -> None:
    """Whole or not at all: a task killed mid-write must leave no partial chunk result, which a re-run would
    trust. A local folder (a Path, or an ObjectStoragePath on file://) gets a temporary file and a rename;
    an object store's object appears whole or not at all."""
    if not isinstance(path, Path) and getattr(path, "protocol", None) in ("file", "local"):
        path = Path(path.path)
    if isinstance(path, Path):
        write_atomically(path, text)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def select_tables(config: CompareConfig, tables: list[str] | None) -> list[TableSpec]:
    """The configured tables named in ``tables`` (SCHEMA.TABLE or TABLE), all when None."""
    if not tables:
        return list(config.tables)
    known = {name for s in config.tables for name in (s.label, s.table_name)}
    if unknown := [t for t in tables if t not in known]:
        raise ConfigError(
            f"table {unknown[0]}: not in the config's tables; give one of: {', '.join(s.label for s in config.tables)}"
        )
    return [s for s in config.tables if s.label in tables or s.table_name in tables]


def _spec(config: CompareConfig, table: str) -> TableSpec:
    [spec] = select_tables(config, [table])[:1]
    return spec


def _comparator(config: CompareConfig, spec: TableSpec) -> TableComparator:
    return TableComparator(
        spec,
        connector(config.source),
        connector(config.target),
        dialect=config.dialect("source"),
        target_dialect=config.dialect("target"),
        max_threads=config.max_threads,
    )


def _audit(config: CompareConfig, layout: Layout) -> Audit:
    return Audit(layout.audit(), layout.run_id, db_url=config.audit_db_url(), secrets=config.secrets())


@contextlib.contextmanager
def _recorded(audit: Audit, table: str):
    """A step that fails leaves a COMPARISON_FAILED event with the redacted error."""
    try:
        yield
    except Exception as exc:
        audit.event("COMPARISON_FAILED", table, error=audit.error(exc))
        raise


def show_progress(table: str, done: int, total: int) -> None:
    """A progress bar on a terminal; the seeds' log lines otherwise."""
    if sys.stderr.isatty():
        filled = int(30 * done / max(total, 1))
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r{table:<30} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} chunks{end}")
        sys.stderr.flush()
    else:
        log.info("%s: processed chunk %d/%d", table, done, total)


# -- the steps ------------------------------------------------------------------------------------------


def plan_tables(
    config: CompareConfig, layout: Layout, *, tables: list[str] | None = None, max_items: int = MAX_MAP_ITEMS
) -> list[dict[str, Any]]:
    """Validate the config, plan every table (or reuse its stored plan), and return the map items:
    ``{"table", "chunks": [indexes]}``; tables with many chunks are batched so that all tables together make
    at most ``max_items`` items."""
    validate(config)
    selected = select_tables(config, tables)
    audit = _audit(config, layout)
    plans = {}
    for spec in selected:
        with _recorded(audit, spec.label):
            audit.event("COMPARISON_START", spec.label)
            path = layout.plan(spec.label)
            if path.exists():  # a resumed session, a re-run task: the plan its chunk results were made with
                _, chunks = decode_plan(json.loads(path.read_text()))
            else:
                comparator = _comparator(config, spec)
                try:
                    schema = comparator.inspect()
                    chunks = comparator.plan()
                finally:
                    comparator.close()
                _write(path, json.dumps(encode_plan(spec.label, schema, chunks), default=str))
            plans[spec.label] = chunks
    total = sum(len(c) for c in plans.values())
    per_item = max(1, -(-total // max_items))
    return [
        {"table": table, "chunks": [c.index for c in chunks[i : i + per_item]]}
        for table, chunks in plans.items()
        for i in range(0, len(chunks), per_item)
    ]


def _plan(layout: Layout, table: str):
    path = layout.plan(table)
    if not path.exists():
        raise CompareError(f"table {table}: no plan at {path}; run the plan step first")
    return decode_plan(json.loads(path.read_text()))


def compare_batch(
    config: CompareConfig,
    layout: Layout,
    item: dict[str, Any],
    *,
    on_chunk: Callable[[ChunkResult, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Compare a batch of chunks of one table (``max_threads`` at a time); each result is stored as it
    finishes, then ``on_chunk(result, done, total)``. Returns each chunk's small summary (counts, a few
    keys, the artifact holding all its keys)."""
    table = item["table"]
    audit = _audit(config, layout)
    with _recorded(audit, table):
        spec = _spec(config, table)
        schema, chunks = _plan(layout, table)
        results: dict[int, ChunkResult] = {}
        todo = []
        for index in item["chunks"]:
            path = layout.chunk(table, index)
            if path.exists():  # done by an earlier try of this task, or before the session stopped
                results[index] = decode_result(json.loads(path.read_text()))
            else:
                todo.append(chunks[index])
        comparator = _comparator(config, spec)
        comparator.schema = schema
        try:  # Ctrl+C: the chunks in flight are lost, no more are started
            with contextlib.closing(comparator.compare_chunks(todo, schema.columns)) as compared:
                for result in compared:
                    _write(layout.chunk(table, result.index), json.dumps(encode_result(result), default=str))
                    results[result.index] = result
                    audit.event("CHUNK", table, chunk=result.summary())
                    show_progress(table, len(results), len(item["chunks"]))
                    if on_chunk:
                        on_chunk(result, len(results), len(item["chunks"]))
        finally:
            comparator.close()
    return [
        {"table": table, "artifact": str(layout.chunk(table, i)), **results[i].summary(key_cap=5)}
        for i in item["chunks"]
    ]


def table_summary(comparison: TableComparison, verified: Verified) -> dict[str, Any]:
    """One table's result: a row of the CSV report, the summary file, the task's XCom."""
    return {
        "status": "completed",
        "source_rows": sum(c.source_rows for c in comparison.chunks),
        "target_rows": sum(c.target_rows for c in comparison.chunks),
        "matching": comparison.matching,
        "missing_in_target": len(comparison.keys("missing_in_target")),
        "missing_in_source": len(comparison.keys("missing_in_source")),
        "different": len(comparison.keys("different")),
        "in_flight": len(verified.in_flight),
        "chunks": len(comparison.chunks),
        "chunks_differing": sum(not c.equal for c in comparison.chunks),
        "seconds": round(comparison.seconds, 3),
        "chunking": comparison.schema.chunking if comparison.schema else "",
        "key_collations": comparison.schema.describe_collations() if comparison.schema else "",
    }


def summary_text(row: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in row.items()) + "\n"


def finish_table(
    config: CompareConfig, layout: Layout, table: str, *, allow_deletes: bool = False, reverify_wait: float = 0
) -> dict[str, Any]:
    """Merge the table's chunk results, re-verify the differences, write the sync SQL and the summary."""
    audit = _audit(config, layout)
    with _recorded(audit, table):
        spec = _spec(config, table)
        schema, chunks = _plan(layout, table)
        if missing := [c.index for c in chunks if not layout.chunk(table, c.index).exists()]:
            raise CompareError(f"table {table}: chunks {missing[:10]} have no result yet; compare them first")
        results = [decode_result(json.loads(layout.chunk(table, c.index).read_text())) for c in chunks]
        comparison = TableComparison(spec, schema.columns, results, sum(r.seconds for r in results), schema)
        comparator = _comparator(config, spec)
        comparator.schema = schema
        verified = reverify(comparator, comparison, wait_seconds=reverify_wait)
        summary: dict[str, Any] = {"table": spec.label, **table_summary(comparison, verified)}
        now = datetime.now(UTC)
        stamp = now.strftime("%Y%m%d_%H%M%S")
        if verified.has_changes:
            sql = sync_sql(
                comparator,
                comparison,
                verified,
                session_id=layout.run_id,
                generated_at=now,
                allow_deletes=allow_deletes,
            )
            path = layout.file(f"sync_target_{_slug(spec.label)}_{stamp}_{layout.short_id}.sql")
            _write(path, sql)
            summary["sql_file"] = str(path)
        _write(layout.file(f"comparison_summary_{_slug(spec.label)}_{stamp}.txt"), summary_text(summary))
        _write(
            layout.verified(spec.label),
            json.dumps({k: [encode(key) for key in keys] for k, keys in asdict(verified).items()}),
        )
        audit.event("COMPARISON_END", spec.label, results=summary)
    return summary


def report_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS)
    writer.writeheader()
    writer.writerows({k: r.get(k, "") for k in REPORT_FIELDS} for r in rows)
    return out.getvalue()


def write_report(layout: Layout, summaries: list[dict[str, Any]]) -> str:
    path = layout.file(f"comparison_report_{datetime.now(UTC):%Y%m%d_%H%M%S}.csv")
    _write(path, report_csv(summaries))
    return str(path)


__all__ = [
    "Layout",
    "SessionLayout",
    "compare_batch",
    "finish_table",
    "plan_tables",
    "select_tables",
    "write_report",
]
