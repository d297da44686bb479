"""Tests only: a `dataloader run` (or `sentinel compare`) process that SIGKILLs itself at a named stage.

The process is forked from a server that imported the loader once (``multiprocessing``'s forkserver), so
each kill costs the load, not the interpreter's start; it then runs the real CLI (``cli.main(["run",
KEY])``) with its own heartbeat, run owner and lifecycle, like a process started from a shell, on the Sail
server its environment names (``SPARK_REMOTE``). At the stage it writes the stage's name to the marker
file and kills itself with SIGKILL: no ``finally``, no ``atexit``, no signal handler runs, exactly as when
the kernel's OOM killer or ``kill -9`` ends a load. With ``RELIABILITY_PAUSE`` set it waits at the stage
instead (a test stops a database meanwhile) and goes on.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

STAGES = {
    "before_extraction": "the source's catalog has been read, its rows not yet (used to pause a load)",
    "extraction": "the source's rows are being staged as Parquet files (one batch written, more to come)",
    "staged": "the rows are written to the staging Delta table; the target is untouched",
    "merge": "the merge (append for append_only) has committed to the target; the staging table is not dropped",
    "chunk": "chunk 0 of the backfill is committed, chunk 1 has been read but not written",
    "finalize": "every chunk is committed; finalize (watermark, switch to incremental) has begun",
    "committed": "the Delta commit is done and the summary computed; the control row is not updated yet",
}


def _shell(env: dict[str, str], marker: str, program: str) -> None:
    """The process as a shell starts it: its environment, a ``__main__`` with a file (pyspark.sql.connect
    takes one without, as the fork server's ``python -c`` is, for its own doctests and exits), and its
    stderr kept in ``<marker>.stderr`` for the test to read."""
    sys.modules["__main__"].__file__ = program
    os.environ.update(env)
    err = os.open(Path(marker).with_suffix(".stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(err, 2)
    sys.stderr = os.fdopen(2, "w", buffering=1)


def _die(marker: Path, stage: str) -> None:
    """Killed at ``stage``; with ``RELIABILITY_PAUSE`` set, paused there instead until ``<marker>.release``
    exists (a test stops a database meanwhile), then the load goes on."""
    if os.environ.get("RELIABILITY_PAUSE"):
        marker.write_text(stage)
        while not marker.with_suffix(".release").exists():
            time.sleep(0.05)
        return
    marker.write_text(stage)
    os.kill(os.getpid(), signal.SIGKILL)


def install(stage: str, marker: Path) -> None:
    """Patch the loader so that this process dies at ``stage``."""
    from include.control import lifecycle
    from include.dataloader import readers
    from include.dataloader.strategies import chunked_backfill
    from include.dataloader.target import LocalWarehouse

    if stage == "extraction":
        read, write_parquet = readers.ArrowSourceReader.read, readers.write_parquet

        def staged_read(self, query, partitioning=None):
            if "information_schema" not in query.lower():  # the catalog query is not the extraction
                self.inline_bytes = 0  # stage every read as files, as a large table is
            return read(self, query, partitioning)

        def dying_write(folder, schema, batches, **kw):
            def then_die():
                for batch in batches:
                    yield batch
                    _die(marker, stage)  # resumed once the writer has written the batch

            return write_parquet(folder, schema, then_die(), **kw)

        readers.ArrowSourceReader.read, readers.write_parquet = staged_read, dying_write
    elif stage == "before_extraction":  # the catalog was read, the rows not yet
        read = readers.ArrowSourceReader.read

        def waiting_read(self, query, partitioning=None):
            if "information_schema" not in query.lower():
                _die(marker, stage)
            return read(self, query, partitioning)

        readers.ArrowSourceReader.read = waiting_read
    elif stage in ("staged", "merge", "chunk"):
        write, merge = LocalWarehouse.write, LocalWarehouse.merge
        chunk_writes = []

        def dying_write(self, df, name, *, mode, replace_where=None):
            if stage == "chunk" and replace_where is not None:
                chunk_writes.append(name)
                if len(chunk_writes) == 2:
                    _die(marker, stage)
            write(self, df, name, mode=mode, replace_where=replace_where)
            if (stage == "staged" and "__stg_" in name.table) or (stage == "merge" and mode == "append"):
                _die(marker, stage)

        def dying_merge(self, *args, **kwargs):
            merged = merge(self, *args, **kwargs)
            if stage == "merge":
                _die(marker, stage)
            return merged

        LocalWarehouse.write, LocalWarehouse.merge = dying_write, dying_merge
    elif stage == "finalize":
        finalize = chunked_backfill.finalize
        chunked_backfill.finalize = lambda ctx: _die(marker, stage) or finalize(ctx)
    elif stage == "committed":
        succeed = lifecycle.Lifecycle.succeed
        lifecycle.Lifecycle.succeed = lambda self, summary: _die(marker, stage) or succeed(self, summary)
    else:
        raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")


def run_until_killed(stage: str, control_key: str, env: dict[str, str], marker: str) -> None:
    """The child: the environment of a shell, the stage's trap, then `dataloader run KEY`."""
    _shell(env, marker, "dataloader")
    install(stage, Path(marker))
    from include.dataloader.cli import main

    code = main(["run", control_key])
    Path(marker).with_suffix(".exit").write_text(str(code))  # the stage was never reached
    os._exit(code)


def compare_until_killed(argv: list[str], env: dict[str, str], kill_at: int, marker: str) -> None:
    """The child: `sentinel compare ARGV`, SIGKILLed as its ``kill_at``-th chunk comparison starts (the
    others in flight on its threads die with it); a span of neighbouring chunks compared in one scan starts
    all of its chunks at once."""
    import threading

    _shell(env, marker, "sentinel")
    from include.sentinel.cli import main
    from include.sentinel.compare import TableComparator

    compare, span, started, lock = TableComparator.compare_chunk, TableComparator._compare_span, [], threading.Lock()

    def starting(chunks):
        with lock:
            for chunk in chunks:
                started.append(chunk.index)
                if len(started) == kill_at:
                    _die(Path(marker), f"chunk {chunk.index}")

    def dying(self, chunk, columns):
        starting([chunk])
        return compare(self, chunk, columns)

    def dying_span(self, group, columns):
        starting(group)
        return span(self, group, columns)

    TableComparator.compare_chunk, TableComparator._compare_span = dying, dying_span
    code = main(["compare", *argv])
    Path(marker).with_suffix(".exit").write_text(str(code))
    os._exit(code)
