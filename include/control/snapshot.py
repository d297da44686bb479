"""The control snapshot: the control rows as a JSON file, read by DAG files at parse time.

DAG files never query the database (a parse happens every few seconds on the dag-processor, and an
unreachable database must not make every loader DAG vanish). A task writes this file atomically every
minute; the DAG files read the last complete copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

SNAPSHOT_PATH_ENV = "DATALOADER_SNAPSHOT_PATH"
FORMAT_VERSION = 1


class SnapshotError(RuntimeError):
    pass


@dataclass(frozen=True)
class Snapshot:
    generated_at: str | None
    rows: tuple[dict[str, Any], ...]


def default_path() -> Path:
    """``$DATALOADER_SNAPSHOT_PATH``, else ``$AIRFLOW_HOME/dataloader/control_snapshot.json``."""
    if explicit := os.environ.get(SNAPSHOT_PATH_ENV):
        return Path(explicit)
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return home / "dataloader" / "control_snapshot.json"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def write(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write the rows atomically: readers see the old file or the new one, never a partial one."""
    document = {
        "format_version": FORMAT_VERSION,
        "generated_at": datetime.now().astimezone().isoformat(),
        "rows": [{k: _plain(v) for k, v in row.items()} for row in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        try:
            json.dump(document, tmp, indent=1, sort_keys=True)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)
    return path


def read(path: Path) -> Snapshot:
    """The last snapshot written; an empty one when none was written yet."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return Snapshot(generated_at=None, rows=())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"control snapshot {path} is unreadable ({exc}); the snapshot DAG rewrites it") from exc
    if document.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(
            f"control snapshot {path} has format {document.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    return Snapshot(generated_at=document.get("generated_at"), rows=tuple(document.get("rows") or ()))
