"""Tests only: a `dataloader run` process that SIGKILLs itself at a named stage of its load.

The process is forked from a server that imported the loader once (``multiprocessing``'s forkserver), so
each kill costs the load, not the interpreter's start; it then runs the real CLI (``cli.main(["run",
KEY])``) with its own Sail engine, heartbeat and run owner, like a process started from a shell. At the
stage it writes the stage's name to the marker file and kills itself with SIGKILL: no ``finally``, no
``atexit``, no signal handler runs, exactly as when the kernel's OOM killer or ``kill -9`` ends a load.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

STAGES = {
    "extraction": "the source's rows are being staged as Parquet files (one batch written, more to come)",
    "staged": "the rows are written to the staging Delta table; the target is untouched",
    "merge": "the merge (append for append_only) has committed to the target; the staging table is not dropped",
    "chunk": "chunk 0 of the backfill is committed, chunk 1 has been read but not written",
    "finalize": "every chunk is committed; finalize (watermark, switch to incremental) has begun",
    "committed": "the Delta commit is done and the summary computed; the control row is not updated yet",
}


def _die(marker: Path, stage: str) -> None:
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
        chunked_backfill.finalize = lambda ctx: _die(marker, stage)
    elif stage == "committed":
        lifecycle.Lifecycle.succeed = lambda self, summary: _die(marker, stage)
    else:
        raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")


def run_until_killed(stage: str, control_key: str, env: dict[str, str], marker: str) -> None:
    """The child: the environment of a shell, the stage's trap, then `dataloader run KEY`."""
    # pyspark.sql.connect takes a __main__ without a file (the fork server's `python -c`) for its own
    # doctests and exits; a shell's `dataloader` has one
    sys.modules["__main__"].__file__ = "dataloader"
    os.environ.update(env)
    install(stage, Path(marker))
    from include.dataloader.cli import main

    code = main(["run", control_key])
    Path(marker).with_suffix(".exit").write_text(str(code))  # the stage was never reached
    os._exit(code)
