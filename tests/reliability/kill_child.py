"""Tests only: a `dataloader run` (or `sentinel compare`) process that SIGKILLs itself at a named stage.

The process is forked from a server that imported the loader once (``multiprocessing``'s forkserver), so
each kill costs the load, not the interpreter's start; it then runs the real CLI (``cli.main(["run",
KEY])``) with its own heartbeat, run owner and lifecycle, like a process started from a shell, on the Sail
server its environment names (``SPARK_REMOTE``). At the stage it writes the stage's name to the marker
file and kills itself with SIGKILL: no ``finally``, no ``atexit``, no signal handler runs, exactly as when
the kernel's OOM killer or ``kill -9`` ends a load. With ``RELIABILITY_PAUSE`` set it waits at the stage
instead (a test stops a database meanwhile) and goes on. At an engine stage (``ENGINE_STAGES``) it sends
the committing Spark call from a thread and dies once the engine is seen executing it (``_gate``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
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
    # inside a committing Spark call: the engine is executing it when the process dies (ENGINE_STAGES)
    "in_overwrite": "full's overwrite of the target is executing in the engine",
    "in_chunk": "chunk 1's replaceWhere write is executing in the engine (chunk 0 committed)",
    "in_merge": "the MERGE INTO the target is executing in the engine",
    "in_append": "append_only's append of the new rows to the target is executing in the engine",
}
ENGINE_STAGES = ("in_overwrite", "in_chunk", "in_merge", "in_append")
GATE_GUARD_SECONDS = 120  # a held call goes on by itself if no test releases it (a crashed test)


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


def _gate(marker: Path):
    """A Spark filter that passes every row and holds the engine inside the call: a Python UDF, so it runs
    in the engine's process (the Sail server), not in the loader's. Its first call writes the engine's pid
    to ``<marker>.engine`` (the proof that the request reached the engine and is executing), then waits for
    ``<marker>.release``: ``commit`` lets the call go on to its Delta commit, ``fail`` makes the engine fail
    it (no commit). It writes ``<marker>.done`` as it lets the call go."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType

    engine, release, done = (str(marker.with_suffix(s)) for s in (".engine", ".release", ".done"))
    guard = GATE_GUARD_SECONDS

    def gate(_value):
        import os
        import pathlib
        import time

        pathlib.Path(engine).write_text(str(os.getpid()))
        deadline = time.monotonic() + guard
        while not pathlib.Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        pathlib.Path(done).write_text("released")
        if pathlib.Path(release).exists() and pathlib.Path(release).read_text() == "fail":
            raise RuntimeError("the engine failed the call (the test's choice)")
        return True

    return F.udf(gate, BooleanType())


def _die_in_flight(marker: Path, stage: str, call) -> None:
    """``call`` (a Spark call) sent from a thread; SIGKILLed once the engine is executing it (the gate
    has written ``<marker>.engine``), so the request is in the engine, its reply not yet back."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    engine = marker.with_suffix(".engine")
    while not engine.exists():
        if not thread.is_alive():
            raise RuntimeError(f"the Spark call of stage {stage} ended before the engine was seen executing it")
        time.sleep(0.005)
    _die(marker, stage)


def _install_in_engine(stage: str, marker: Path) -> None:
    """Patch the loader so that this process dies while the engine executes the committing call."""
    from include.dataloader.target import LocalWarehouse, Warehouse

    write = LocalWarehouse.write
    chunk_writes = []

    def held(df):
        return df.filter(_gate(marker)(df[df.columns[0]]))

    def dying_write(self, df, name, *, mode, replace_where=None):
        if stage == "in_chunk" and replace_where is not None:
            chunk_writes.append(name)
        into_target = "__stg_" not in name.table
        if (
            (stage == "in_chunk" and len(chunk_writes) == 2)
            or (stage == "in_overwrite" and mode == "overwrite" and into_target)
            or (stage == "in_append" and mode == "append" and into_target)
        ):
            _die_in_flight(marker, stage, lambda: write(self, held(df), name, mode=mode, replace_where=replace_where))
        write(self, df, name, mode=mode, replace_where=replace_where)

    class HeldMerge:
        """The warehouse's Spark session, its ``MERGE INTO`` reading the staged rows through the gate."""

        def __init__(self, spark, staging_ref):
            self._spark, self._staging = spark, staging_ref

        def __getattr__(self, attr):
            return getattr(self._spark, attr)

        def sql(self, query, *args, **kwargs):
            if not query.startswith("MERGE INTO"):
                return self._spark.sql(query, *args, **kwargs)
            self._spark.udf.register("kill_gate", _gate(marker))
            source = f"USING {self._staging} AS s"
            assert source in query, query
            first = self._spark.sql(f"SELECT * FROM {self._staging}").columns[0]
            query = query.replace(source, f"USING (SELECT * FROM {self._staging} WHERE kill_gate(`{first}`)) AS s")
            _die_in_flight(marker, stage, lambda: self._spark.sql(query).collect())

    def engine_merge(self, target, staging, keys, **kwargs):
        # Spark SQL's MERGE INTO, run by the engine: the path of Unity Catalog (Databricks), where the
        # local warehouse merges with delta-rs in the loader's own process
        self.spark = HeldMerge(self.spark, self.ref(staging))
        return Warehouse.merge(self, target, staging, keys, **kwargs)

    LocalWarehouse.write = dying_write
    if stage == "in_merge":
        LocalWarehouse.merge = engine_merge


def install(stage: str, marker: Path) -> None:
    """Patch the loader so that this process dies at ``stage``."""
    from include.control import lifecycle
    from include.dataloader import readers
    from include.dataloader.strategies import chunked_backfill
    from include.dataloader.target import LocalWarehouse

    if stage in ENGINE_STAGES:
        _install_in_engine(stage, marker)
    elif stage == "extraction":
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
