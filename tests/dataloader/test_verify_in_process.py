"""The verification's in-process path (include/dataloader/verification/arrow.py, buckets.py): the same result as
the in-engine path, in every strategy's scope, on a real PostgreSQL source and its Delta table; memory held
bounded by batches and passes, not by rows; which path runs where."""

from __future__ import annotations

from datetime import UTC, datetime

import deltalake
import numpy as np
import pyarrow as pa
import pytest

from include.dataloader.dialects import ConnectionParams
from include.dataloader.queries import Cursor
from include.dataloader.verification import Bronze, local_bronze, verify
from include.dataloader.verification.arrow import applies, arrow_value
from include.dataloader.verification.buckets import ArrowSide, compare_streams, prefetched
from tests.dataloader.conftest import FIXED_NOW, control_row


@pytest.fixture
def drifted(loads, source_sql):
    """public.orders loaded by an incremental load, then drifted on both sides; -> (row, watermark)."""
    source_sql(
        "CREATE TABLE orders (order_id int PRIMARY KEY, status text, amount numeric(12,2), updated_at timestamp)"
    )
    source_sql(
        "INSERT INTO orders SELECT g, 'new', g * 1.25, timestamp '2024-01-01' + g * interval '1 hour' "
        "FROM generate_series(1, 40) g"
    )
    source_sql("INSERT INTO orders VALUES (41, 'open', 1, NULL), (42, 'open', 2, NULL)")
    row = control_row(
        "orders",
        "incremental",
        incremental_column="updated_at",
        incremental_type="timestamp",
        rolling_column="updated_at",
        rolling_days=8,  # the window starts 2024-01-02 00:00 (FIXED_NOW is 2024-01-10)
        primary_key_columns=["order_id"],
        verify=True,
    )
    watermark = loads.run(row).watermark
    source_sql("DELETE FROM orders WHERE order_id IN (3, 30)")  # deleted at the source: drift or failure
    source_sql("INSERT INTO orders VALUES (50, 'late', 5, timestamp '2024-01-01 00:30')")  # below the watermark
    source_sql("UPDATE orders SET status = 'closed' WHERE order_id = 41")  # a NULL cursor, changed
    source_sql("UPDATE orders SET amount = 3.01, updated_at = timestamp '2024-01-03' WHERE order_id = 28")
    table = deltalake.DeltaTable(str(loads.warehouse.path(loads.context(row).target)))
    table.update(updates={"amount": "99"}, predicate="order_id IN (7, 33)")
    return row, watermark


@pytest.mark.parametrize("strategy", ["full", "incremental", "append_only", "rolling", "chunked_backfill"])
def test_in_process_and_in_engine_verifications_agree_in_every_scope(drifted, loads, source_url, strategy, tmp_path):
    row, watermark = drifted
    results = [
        verify(
            row,
            "postgresql",
            ConnectionParams(url=source_url),
            local_bronze(row, loads.warehouse.root),
            run_id="r1",
            watermark=watermark,
            out_dir=tmp_path / str(in_process),
            strategy=strategy,
            now=FIXED_NOW,
            in_process=in_process,
        ).as_dict()
        for in_process in (True, False)
    ]
    for result in results:
        assert result.pop("report") and result.pop("sync_sql")  # files of their own, both written
    in_process, in_engine = results
    assert in_process == in_engine
    assert in_process["failures"] > 0
    if strategy == "incremental":  # 3 and 30 deleted, 28 moved past the watermark (drift); 50 late, 7 and 33
        # changed in bronze (failures): the watermark is 40's cursor, 2024-01-02 16:00
        assert in_process["keys"]["missing_in_target"] == [[50]]
        assert in_process["keys"]["different"] == [[7], [33]]
        assert in_process["keys"]["deleted_or_changed_at_source"] == [[3], [28], [30]]
        assert in_process["null_cursor_rows_left_out"] == 2
    if strategy == "chunked_backfill":  # the NULL cursors compared too: 41 changed at the source
        assert [41] in in_process["keys"]["different"]


def _stream(rows: int, batch: int, *, changed: frozenset[int] = frozenset()):
    """``rows`` rows (id, value) made batch by batch, never all at once; ``changed`` ids get another value."""
    marked = np.array(sorted(changed), dtype=np.int64)

    def scan():
        for start in range(0, rows, batch):
            ids = np.arange(start, min(start + batch, rows), dtype=np.int64)
            values = ids * 7 + np.isin(ids, marked)
            yield pa.record_batch([pa.array(ids), pa.array(values)], names=["id", "value"])

    return ArrowSide(scan, [("id", "integer"), ("value", "integer")], 1)


@pytest.mark.parametrize("rows", [20_000, 200_000])
def test_memory_holds_a_batch_and_a_pass_whatever_the_rows(rows):
    """Batches of 5,000 rows; 3,000 differing rows located in passes of at most 1,000 (key, hash) pairs:
    what is held does not grow with the table."""
    changed = frozenset(range(0, rows, rows // 3_000))
    diff = compare_streams(_stream(rows, 5_000), _stream(rows, 5_000, changed=changed), pass_rows=1_000)
    assert diff.different == sorted((i,) for i in changed)
    assert diff.max_batch_rows == 5_000
    assert diff.max_held <= 1_000
    assert diff.passes >= 1 + len(changed) // 1_000


def test_missing_rows_on_either_side_are_found_in_process():
    source, target = _stream(10_000, 3_000), _stream(9_990, 3_000)
    assert compare_streams(target, source).missing_in_target == []
    diff = compare_streams(source, target)
    assert diff.missing_in_target == [(i,) for i in range(9_990, 10_000)]
    assert (diff.source_rows, diff.target_rows, diff.missing_in_source) == (10_000, 9_990, [])


def test_the_in_process_path_runs_for_postgres_sources_and_local_delta_tables_only(tmp_path):
    row = control_row("orders", "full", primary_key_columns=["order_id"])
    local = local_bronze(row, tmp_path)
    assert applies("postgresql", local)
    assert not applies("oracle", local)  # its Arrow canonical form is not held by tests here
    assert not applies("postgresql", Bronze(lambda: None, "main.bronze", "orders", "databricks"))


def test_the_bronze_scope_takes_the_watermark_as_spark_sql_does():
    stamp = Cursor("updated_at", "timestamp", with_time_zone=True)
    utc = pa.timestamp("us", "UTC")
    assert arrow_value(stamp, "2024-01-04 00:00:00", utc).as_py() == datetime(2024, 1, 4, tzinfo=UTC)
    assert arrow_value(stamp, "2024-01-04 02:00:00+02:00", utc).as_py() == datetime(2024, 1, 4, tzinfo=UTC)
    wall = Cursor("updated_at", "timestamp")
    assert arrow_value(wall, "2024-01-04 00:00:00.5", pa.timestamp("us")).as_py() == datetime(
        2024, 1, 4, 0, 0, 0, 500000
    )
    day = Cursor("d", "date")
    assert arrow_value(day, "2024-01-04", pa.timestamp("us")).as_py() == datetime(2024, 1, 4)
    assert arrow_value(Cursor("n", "integer"), "42", pa.int64()).as_py() == 42


def test_read_ahead_hands_over_every_batch_in_order_a_failure_and_stops_when_left():
    assert [b.num_rows for b in prefetched(_stream(10, 3).scan())] == [3, 3, 3, 1]

    def failing():
        yield pa.record_batch([pa.array([1])], names=["id"])
        raise ConnectionError("source lost")

    read = prefetched(failing())
    assert next(read).num_rows == 1
    with pytest.raises(ConnectionError, match="source lost"):
        next(read)

    closed = []

    def endless():
        try:
            while True:
                yield pa.record_batch([pa.array([1])], names=["id"])
        finally:
            closed.append(True)  # the driver's cursor and connection end

    read = prefetched(endless())
    next(read)
    read.close()
    assert closed == [True]


def test_keys_read_as_text_come_back_as_the_numbers_both_sides_bind():
    """An oid or a numeric key the source reads as text, against the Delta table's bigint and decimal."""
    from decimal import Decimal

    source = pa.table({"k": ["1", "2"], "d": ["1.50", "2.00"], "v": ["a", "b"]})
    target = pa.table(
        {"k": pa.array([1, 2], pa.int64()), "d": pa.array([Decimal("1.5"), Decimal("2")]), "v": ["a", "c"]}
    )
    kinds = [("k", "integer"), ("d", "decimal"), ("v", "text")]
    diff = compare_streams(
        ArrowSide(lambda: source.to_batches(), kinds, 2), ArrowSide(lambda: target.to_batches(), kinds, 2)
    )
    assert diff.different == [(2, Decimal("2.00"))]
    assert [type(v) for v in diff.different[0]] == [int, Decimal]


def test_the_source_read_in_key_ranges_at_once_finds_what_one_read_finds(loads, source_url, source_sql, tmp_path):
    """An integer key with gaps and an uneven spread (most keys low, a few far out), read in 1, 2 and 3 key
    ranges: the same bucket sums, the same verification, each range's batches bounded."""
    from include.dataloader.dialects import dialect_for
    from include.dataloader.verification.arrow import key_ranges, source_scan
    from include.dataloader.verification.buckets import Streams, _Hasher

    source_sql("CREATE TABLE gapped (id bigint PRIMARY KEY, label text, amount numeric(12,2))")
    source_sql(
        "INSERT INTO gapped SELECT g, 'v' || g, g * 0.5 FROM generate_series(1, 900) g WHERE g % 7 <> 0 "
        "UNION ALL SELECT g, NULL, NULL FROM generate_series(1000000, 1000020) g "
        "UNION ALL VALUES (-5, 'low', 1.0), (4000000000, 'far', 2.0)"
    )
    row = control_row("gapped", "full", primary_key_columns=["id"], verify=True)
    loads.run(row)
    table = deltalake.DeltaTable(str(loads.warehouse.path(loads.context(row).target)))
    table.update(updates={"label": "'changed'"}, predicate="id IN (-5, 450, 1000010)")
    table.delete("id IN (8, 4000000000)")
    source_sql("INSERT INTO gapped VALUES (3000000000, 'late', 3.0)")  # after the load: missing in bronze

    dialect, params = dialect_for("postgresql"), ConnectionParams(url=source_url)
    assert key_ranges(row, dialect, params, "id", 1) is None
    kinds = [("id", "integer"), ("label", "text"), ("amount", "decimal")]
    columns = source_columns_of(dialect, params)
    sums = []
    for streams in (1, 2, 3):
        ranges = key_ranges(row, dialect, params, "id", streams)
        assert (ranges is None) == (streams == 1)
        scan = source_scan(row, dialect, params, columns, [n for n, _ in kinds], None, ranges=ranges, batch_rows=64)
        assert isinstance(scan(), Streams) == (streams > 1)
        found = _Hasher(ArrowSide(scan, kinds, 1), timestamp_precision=6, float_digits=15).sums()
        assert found.max_batch <= 64
        sums.append(found)
    for found in sums[1:]:
        assert found.rows == sums[0].rows == 772 + 21 + 2 + 1
        for part in ("counts", "low", "high"):
            assert np.array_equal(getattr(found, part), getattr(sums[0], part))

    results = []
    for streams in (1, 2, 3):
        result = verify(
            row,
            "postgresql",
            params,
            local_bronze(row, loads.warehouse.root),
            run_id="r1",
            watermark=None,
            out_dir=tmp_path / str(streams),
            source_streams=streams,
        ).as_dict()
        assert result.pop("report") and result.pop("sync_sql")
        results.append(result)
    assert results[0] == results[1] == results[2]
    assert results[0]["keys"]["missing_in_target"] == [[8], [3000000000], [4000000000]]
    assert results[0]["keys"]["different"] == [[-5], [450], [1000010]]


def source_columns_of(dialect, params):
    from include.dataloader.verification import source_columns

    conn = dialect.connect(params)
    try:
        return source_columns(control_row("gapped", "full", primary_key_columns=["id"]), dialect, conn)
    finally:
        conn.close()


def test_read_ahead_of_several_streams_hands_over_all_their_batches_and_closes_them_all():
    ids = sorted(b.column(0)[0].as_py() for b in prefetched(_stream(9, 3).scan(), _stream(40, 20).scan()))
    assert ids == [0, 0, 3, 6, 20]
    closed = []

    def endless(name):
        try:
            while True:
                yield pa.record_batch([pa.array([1])], names=["id"])
        finally:
            closed.append(name)

    read = prefetched(endless("a"), endless("b"))
    next(read)
    read.close()
    assert sorted(closed) == ["a", "b"]
