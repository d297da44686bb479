"""DB Sentinel runs as the page lists them: the reports and sync SQL under the artifacts root, and the
results recorded in ``sentinel_audit``. Files are served only from under the artifacts root.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPORT_GLOB = "comparison_report_*.csv"
SERVED_SUFFIXES = {".csv": "text/csv", ".sql": "application/sql", ".txt": "text/plain"}
MAX_DEPTH = 3  # <root>/<dag_id>/<run_id>/ for DAG runs, <root>/ for a CLI output folder
MAX_RUNS = 100
COUNTS = ("missing_in_target", "missing_in_source", "different")


class NotServed(LookupError):
    """A path the page does not serve: outside the artifacts root, missing, or not a report or SQL file."""


def artifacts_root() -> str:
    """``$SENTINEL_ARTIFACTS_ROOT`` as the sentinel DAGs read it (default: ``$AIRFLOW_HOME/sentinel``)."""
    default = Path(os.environ.get("AIRFLOW_HOME", ".")).resolve() / "sentinel"
    return os.environ.get("SENTINEL_ARTIFACTS_ROOT") or str(default)


def local_root(root: str) -> Path | None:
    """The root as a local folder; None for object storage (s3://, abfs://, dbfs://), which is not browsed."""
    if root.startswith("file://"):
        return Path(root.removeprefix("file://"))
    return None if "://" in root else Path(root)


@dataclass
class SentinelRun:
    folder: str  # relative to the root
    report: str  # relative path of the newest report of the folder
    written: datetime
    tables: list[dict] = field(default_factory=list)
    sync_sql: list[str] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(t.get(name) or 0) for t in self.tables)


def runs(root: Path, limit: int = MAX_RUNS) -> list[SentinelRun]:
    """One entry per folder holding a comparison report, newest first (the folder's newest report)."""
    if not root.is_dir():
        return []
    newest: dict[Path, Path] = {}
    for depth in range(MAX_DEPTH + 1):
        for report in root.glob("*/" * depth + REPORT_GLOB):
            folder = report.parent
            if folder not in newest or report.name > newest[folder].name:
                newest[folder] = report
    found = sorted(newest.values(), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    return [_run(root, report) for report in found]


def _run(root: Path, report: Path) -> SentinelRun:
    with report.open(newline="") as handle:
        tables = list(csv.DictReader(handle))
    return SentinelRun(
        folder=str(report.parent.relative_to(root)),
        report=str(report.relative_to(root)),
        written=datetime.fromtimestamp(report.stat().st_mtime, UTC),
        tables=tables,
        sync_sql=sorted(str(p.relative_to(root)) for p in report.parent.glob("sync_target_*.sql")),
    )


def relative(root: Path | None, path: str | None) -> str | None:
    """A recorded artifact path (a local path or file:// URL) relative to the root, if it lies under it."""
    if root is None or not path:
        return None
    local = Path(path.removeprefix("file://"))
    try:
        return str(local.resolve().relative_to(root.resolve()))
    except ValueError:
        return None


def servable(root: Path | None, name: str) -> tuple[Path, str]:
    """The file ``name`` (relative to the root) and its media type; NotServed for anything else, such as
    ``../`` or an absolute path or a symlink leading out of the root."""
    if root is None:
        raise NotServed("the artifacts root is not a local folder")
    base = root.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or not path.is_file() or path.suffix not in SERVED_SUFFIXES:
        raise NotServed(f"{name}: not a report or sync SQL file under the artifacts root")
    return path, SERVED_SUFFIXES[path.suffix]
