"""The local engine streams a source through Parquet staging files: bounded batches, nothing left behind.

Real PostgreSQL, real Sail; small batches and files so that a few rows take the streaming path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.engine import Engine
from include.dataloader.job import execute
from include.dataloader.readers import ArrowSourceReader, local_reader
from include.dataloader.staging import ExtractStaging
from include.dataloader.target import EXTRACT_FOLDER, LocalWarehouse, TableName
from tests.dataloader.conftest import control_row

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = dialect_for("postgresql")


@pytest.fixture
def orders(source_sql):
    source_sql(
        "CREATE TABLE orders (order_id bigint PRIMARY KEY, amount numeric(12,2), note text, updated_at timestamp)"
    )
    source_sql(
        "INSERT INTO orders SELECT g, g * 1.25, 'n' || g, timestamp '2024-01-01' + g * interval '1 hour' "
        "FROM generate_series(1, 10) g"
    )
    return control_row("orders", "full", primary_key_columns=["order_id"])


def staged_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet")) if root.exists() else []


def test_a_large_read_is_staged_in_parquet_files_of_bounded_size(spark, tmp_path, source_url, orders):
    staging = ExtractStaging(tmp_path / "extract")
    params = ConnectionParams(url=source_url)
    reader = local_reader(spark, POSTGRES, params, staging, batch_rows=3, inline_bytes=0, file_rows=4)

    df = reader.read('SELECT "order_id", "amount" FROM "public"."orders"')

    # 10 rows in batches of 3, files of at most 4 rows (rounded up to whole batches): 6 + 4
    files = staged_files(tmp_path / "extract")
    assert [Path(f).name for f in files] == ["part-00001.parquet", "part-00002.parquet"]
    # as the driver types them (ADBC: numeric as text); SourceTable.read casts to the declared types
    assert sorted(tuple(r) for r in df.collect()) == [(i, f"{Decimal(i) * Decimal('1.25'):.2f}") for i in range(1, 11)]
    reader.close()
    assert staged_files(tmp_path / "extract") == []


def test_a_small_read_travels_inline_and_stages_nothing(spark, tmp_path, source_url, orders):
    staging = ExtractStaging(tmp_path / "extract")
    reader = local_reader(spark, POSTGRES, ConnectionParams(url=source_url), staging)

    assert reader.read('SELECT count(*) AS n FROM "public"."orders"').collect()[0]["n"] == 10
    assert not (tmp_path / "extract").exists()


def test_the_engine_removes_a_loads_staging_when_the_job_ends(spark, tmp_path, source_url, orders, monkeypatch):
    warehouse = LocalWarehouse(spark, tmp_path / "warehouse")
    seen: list[list[str]] = []

    def reader_for(dialect, params):
        reader = local_reader(spark, dialect, params, warehouse.extract_staging(), batch_rows=4, inline_bytes=0)
        original = reader.read

        def read(query, partitioning=None):
            df = original(query, partitioning)
            seen.append(staged_files(warehouse.root / EXTRACT_FOLDER))
            return df

        reader.read = read
        return reader

    monkeypatch.setenv("SRC_URL", source_url)
    dbconfig = {"db_config_key": "src", "db_type": "postgresql", "db_config_value": {"url": "SRC_URL"}}
    summary = execute(Engine(spark, warehouse, reader_for), orders, dbconfig)["summary"]

    assert summary["inserted"] == 10
    # every read was staged while the load ran (the catalog's 4 rows, then the 10 rows of data)
    assert [[Path(f).parent.name for f in files] for files in seen] == [["read-0001"], ["read-0001", "read-0002"]]
    assert staged_files(warehouse.root / EXTRACT_FOLDER) == []
    assert list((warehouse.root / EXTRACT_FOLDER).iterdir()) == []
    target = warehouse.read(TableName("bronze", "test", "orders"))
    assert {f.name: f.dataType.simpleString() for f in target.schema.fields} == {
        "order_id": "bigint",
        "amount": "decimal(12,2)",
        "note": "string",
        "updated_at": "timestamp_ntz",
    }
    assert sorted(tuple(r) for r in target.select("order_id", "note").collect())[:2] == [(1, "n1"), (2, "n2")]


def test_an_extraction_that_dies_midway_leaves_the_target_and_no_files(spark, tmp_path, loads, orders, source_sql):
    from include.dataloader.strategies import full

    loads.run(orders)
    version = loads.version(orders)
    source_sql("UPDATE orders SET note = 'changed'")

    ctx = loads.context(orders)
    real = ctx.source.reader.batches

    def dying(query):
        for number, batch in enumerate(real(query)):
            if number == 2 and "generate" not in query and "information_schema" not in query:
                raise ConnectionError("server closed the connection unexpectedly")
            yield batch

    ctx.source.reader.batches = dying
    with pytest.raises(ConnectionError):
        full.load(ctx)

    assert loads.version(orders) == version  # no commit: readers see the previous load
    assert {r[0] for r in loads.rows(orders, "note")} != {"changed"}
    # the failed read removed its files at once; the catalog read's go when the load ends
    assert [Path(f).parent.name for f in staged_files(loads.warehouse.root / EXTRACT_FOLDER)] == ["read-0001"]
    ctx.source.reader.close()
    assert staged_files(loads.warehouse.root / EXTRACT_FOLDER) == []


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from include.dataloader.staging import ExtractStaging
    staging = ExtractStaging(Path(sys.argv[1]))
    folder = staging.new_read()
    (folder / "part-00001.parquet").write_bytes(b"half a file")
    print(staging.run_dir, flush=True)
    time.sleep(600)
    """
)


def test_the_next_run_removes_a_killed_runs_files_and_keeps_a_live_ones(tmp_path):
    root = tmp_path / "extract"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True, env=env)
    alive = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        killed_dir = Path(killed.stdout.readline().strip())
        alive_dir = Path(alive.stdout.readline().strip())
        os.kill(killed.pid, signal.SIGKILL)  # no cleanup code runs: the lock goes with the process
        killed.wait()

        # at once, not after a grace period: a folder gets its run's name only once its lock is held
        assert ExtractStaging(root).sweep() == [killed_dir]
        assert not killed_dir.exists()
        assert (alive_dir / "read-0001" / "part-00001.parquet").exists()
    finally:
        for process in (killed, alive):
            process.kill()
            process.wait()


def test_a_folder_still_being_made_is_left_alone_for_the_grace_period(tmp_path):
    (tmp_path / ".run-new" / "read-0001").mkdir(parents=True)  # made, its lock not yet taken
    assert ExtractStaging(tmp_path).sweep() == []
    assert ExtractStaging(tmp_path, grace_seconds=0).sweep() == [tmp_path / ".run-new"]


def test_a_folder_without_a_lock_is_dead(tmp_path):
    (tmp_path / "run-debris" / "read-0001").mkdir(parents=True)
    assert ExtractStaging(tmp_path, grace_seconds=0).sweep() == [tmp_path / "run-debris"]


def test_a_run_sweeps_before_it_stages(spark, tmp_path):
    (tmp_path / "run-dead" / "read-0001").mkdir(parents=True)
    os.utime(tmp_path / "run-dead", (0, 0))  # older than any grace period
    batches = [pa.record_batch({"n": list(range(5))})]
    reader = ArrowSourceReader(spark, lambda q: iter(batches), ExtractStaging(tmp_path), inline_bytes=0)

    assert reader.read("q").count() == 5
    assert [p.name for p in tmp_path.iterdir()] == [reader.staging.run_dir.name]
    reader.close()


def test_driver_types_spark_cannot_read_are_staged_losslessly(spark, tmp_path):
    batch = pa.record_batch(
        {
            "u64": pa.array([2**64 - 1], pa.uint64()),
            "u8": pa.array([255], pa.uint8()),
            "ns": pa.array([datetime(2024, 1, 1, 1, 2, 3, 123456)], pa.timestamp("ns")),
            "code": pa.array(["DE"]).dictionary_encode(),
            "empty": pa.array([None], pa.null()),
        }
    )
    reader = ArrowSourceReader(spark, lambda q: iter([batch]), ExtractStaging(tmp_path), inline_bytes=0)

    df = reader.read("q")

    assert df.schema.simpleString() == "struct<u64:decimal(20,0),u8:smallint,ns:timestamp_ntz,code:string,empty:string>"
    assert tuple(df.collect()[0]) == (Decimal(2**64 - 1), 255, datetime(2024, 1, 1, 1, 2, 3, 123456), "DE", None)
    reader.close()


def test_the_local_engine_stages_each_load_under_its_warehouse(tmp_path):
    from include.dataloader.engine import local_engine

    engine = local_engine(tmp_path / "warehouse")
    first = engine.reader_for(POSTGRES, ConnectionParams(url="postgresql:///x"))
    second = engine.reader_for(dialect_for("clickhouse"), ConnectionParams(url="chdb:///x"))

    assert first.staging.root == second.staging.root == tmp_path / "warehouse" / EXTRACT_FOLDER
    assert first.staging is not second.staging  # a run folder per load
    assert (first.dialect, second.dialect) == ("postgresql", "clickhouse")
