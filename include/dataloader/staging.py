"""Where the local engine stages extracted rows: Parquet files that Spark reads lazily.

A load (one run) owns one folder ``<root>/<run>/`` and holds an exclusive ``flock`` on ``<run>/.lock``
while it lives; each read it makes is a subfolder of Parquet files. The folder is removed when the load
ends, committed or not. A run killed hard (SIGKILL, OOM) leaves its folder behind, but the kernel drops
its lock: the next run (when it opens its own folder, and again when it ends) removes every folder whose
lock it can take. A folder is made under a hidden name and gets its run name only once it is locked, so
a named folder whose lock is free is dead at any age; a hidden one is left alone for ``GRACE`` (its run
may be between the mkdir and the lock).

Staged files are never part of a Delta table: the target only changes in the strategy's one commit,
after the whole extraction is staged, so a run killed mid-extraction leaves the target untouched.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

GRACE_SECONDS = 60.0
LOCK_FILE = ".lock"
FILE_ROWS = 1_000_000  # rows per Parquet file: several files let Spark scan them in parallel


class ExtractStaging:
    """One run's staging folder under ``root``, made on first use.

    :param root: the folder shared by all runs (the local warehouse's ``_extract``).
    """

    def __init__(self, root: Path, *, grace_seconds: float = GRACE_SECONDS):
        self.root = Path(root)
        self.grace_seconds = grace_seconds
        self.run_dir: Path | None = None
        self._lock: int | None = None
        self._reads = 0

    def _open(self) -> Path:
        if self.run_dir is None:
            self.sweep()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            name = f"run-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            making = self.root / f".{name}"
            making.mkdir(parents=True)
            self._lock = os.open(making / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.run_dir = making.rename(self.root / name)  # the lock stays: it is the file's, not the name's
        return self.run_dir

    def new_read(self) -> Path:
        """An empty folder for one read's files."""
        self._reads += 1
        folder = self._open() / f"read-{self._reads:04d}"
        folder.mkdir()
        return folder

    def close(self) -> None:
        """Remove this run's files (the load is over, committed or failed), and those of dead runs: a
        load whose reads were all small (sent to Spark inline) never opened a folder to sweep them."""
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        self.sweep()

    def sweep(self) -> list[Path]:
        """Remove the folders of runs that died; returns them."""
        removed = []
        if not self.root.is_dir():
            return removed
        for folder in self.root.iterdir():
            if folder == self.run_dir or not folder.is_dir():
                continue
            if folder.name.startswith(".") and self._young(folder):  # maybe not locked yet
                continue
            if _is_dead(folder):
                shutil.rmtree(folder, ignore_errors=True)
                log.info("removed the staging folder of a dead run: %s", folder)
                removed.append(folder)
        return removed

    def _young(self, folder: Path) -> bool:
        try:
            return time.time() - folder.stat().st_mtime < self.grace_seconds
        except FileNotFoundError:
            return True  # another run is removing it


def _is_dead(folder: Path) -> bool:
    """True when no live process holds the folder's lock (or it has none)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return True


def write_parquet(folder: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, file_rows: int = FILE_ROWS):
    """Write ``batches`` as Parquet files of at most ``file_rows`` rows; returns the row count.

    One batch is in memory at a time. Uncompressed: the files live for one load, and the disk is faster
    than the codec on a small machine. No statistics: Sail (DataFusion) carries a text column's min/max
    through a cast to decimal and fails when the text order differs from the numeric one ("11.00" <
    "5.00"); the files are scanned whole anyway.
    """
    rows, written, index, writer = 0, 0, 0, None
    try:
        for batch in batches:
            if batch.num_rows == 0 and writer is not None:
                continue
            if writer is None or written >= file_rows:
                if writer is not None:
                    writer.close()
                index += 1
                writer = pq.ParquetWriter(
                    folder / f"part-{index:05d}.parquet", schema, compression="none", write_statistics=False
                )
                written = 0
            writer.write_batch(batch)
            written += batch.num_rows
            rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows
