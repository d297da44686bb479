"""Sessions: a comparison that stops (Ctrl+C, a killed process, a lost connection) resumes where it was.

Layout under the output folder, as the seeds describe, in JSON rather than pickle:

    comparison_state/session_<id>.json              the session: every table's status and progress
    checkpoints/<id8>_<SCHEMA_TABLE>_plan.json       a table's chunk plan (written by the plan step)
    checkpoints/<id8>_<SCHEMA_TABLE>_chunk_<n>.json  one finished chunk's result (by the compare step)

All are written atomically (temporary file, then rename), after every chunk: a crash loses at most the
chunks in flight. A resume reuses the stored plan, so it compares the same chunks that the checkpoints
describe (include/sentinel/steps.py, ``SessionLayout``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

STATE_DIR, CHECKPOINT_DIR = "comparison_state", "checkpoints"


class SessionNotFound(LookupError):
    pass


def write_atomically(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
    return path


@dataclass
class TableProgress:
    status: str = "pending"  # pending | in_progress | completed | failed
    total_chunks: int = 0
    completed_chunks: int = 0
    chunks: list[list[Any]] = field(default_factory=list)  # unused: sessions before the plan checkpoint had it
    error: str | None = None
    last_update: str | None = None


@dataclass
class Session:
    session_id: str
    config: str
    start_time: str
    status: str = "started"
    last_update: str | None = None
    table_progress: dict[str, TableProgress] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        statuses = [p.status for p in self.table_progress.values()]
        return {s: statuses.count(s) for s in ("completed", "failed", "in_progress", "pending")}

    def summary(self) -> str:
        counts = self.counts()
        lines = [
            "=" * 80,
            f"SESSION SUMMARY: {self.session_id}",
            "=" * 80,
            f"Total Tables: {len(self.table_progress)}",
            f"Completed: {counts['completed']}",
            f"Failed: {counts['failed']}",
            f"In Progress: {counts['in_progress']}",
            f"Pending: {counts['pending']}",
            f"Started: {self.start_time}",
            f"Last Update: {self.last_update}",
            "",
            "Table Details:",
            "-" * 80,
        ]
        for name, progress in self.table_progress.items():
            lines.append(f"{name:<40} {progress.status:<12} {progress.completed_chunks}/{progress.total_chunks}")
            if progress.error:
                lines.append(f"   Error: {progress.error}")
        return "\n".join([*lines, "=" * 80])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SessionStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _state_path(self, session_id: str) -> Path:
        return self.root / STATE_DIR / f"session_{session_id}.json"

    def _checkpoint(self, session_id: str, table: str, index: int) -> Path:
        return self.root / CHECKPOINT_DIR / f"{session_id[:8]}_{table.replace('.', '_')}_chunk_{index}.json"

    def _write(self, path: Path, data: Any) -> None:
        write_atomically(path, json.dumps(data, indent=1, default=str))

    def new(self, config: str, tables: list[str]) -> Session:
        session = Session(str(uuid.uuid4()), config, _now(), table_progress={t: TableProgress() for t in tables})
        self.save(session)
        return session

    def save(self, session: Session) -> None:
        session.last_update = _now()
        self._write(self._state_path(session.session_id), asdict(session))

    def load(self, id_or_prefix: str) -> Session:
        matches = sorted((self.root / STATE_DIR).glob(f"session_{id_or_prefix}*.json"))
        if not matches:
            raise SessionNotFound(f"no session {id_or_prefix!r} in {self.root / STATE_DIR}; see --list-sessions")
        if len(matches) > 1:
            raise SessionNotFound(f"{id_or_prefix!r} matches {len(matches)} sessions; give more of the id")
        data = json.loads(matches[0].read_text())
        data["table_progress"] = {k: TableProgress(**v) for k, v in data["table_progress"].items()}
        return Session(**data)

    def list(self) -> list[Session]:
        return [
            self.load(p.stem.removeprefix("session_")) for p in sorted((self.root / STATE_DIR).glob("session_*.json"))
        ]

    def cleanup(self, days: float) -> list[str]:
        """Remove sessions (and their checkpoints) not updated for ``days`` days."""
        cutoff = time.time() - timedelta(days=days).total_seconds()
        removed = []
        for path in (self.root / STATE_DIR).glob("session_*.json"):
            if path.stat().st_mtime < cutoff:
                session_id = path.stem.removeprefix("session_")
                for checkpoint in (self.root / CHECKPOINT_DIR).glob(f"{session_id[:8]}_*.json"):
                    checkpoint.unlink()
                path.unlink()
                removed.append(session_id)
        return removed
