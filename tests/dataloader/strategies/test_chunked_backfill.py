"""chunked_backfill: chunks that cover the table, each idempotent, then the switch to incremental."""

from datetime import date

import pytest

from include.control.model import ControlRow
from include.dataloader.strategies import chunked_backfill
from include.dataloader.strategies.chunked_backfill import Chunk, TooManyChunks
from tests.dataloader.conftest import control_row


@pytest.fixture
def transactions(source_sql):
    source_sql("CREATE TABLE transactions (txn_id bigint PRIMARY KEY, amount numeric(12,2), booked_on date)")
    source_sql("INSERT INTO transactions SELECT g, g * 1.5, date '2024-01-01' + g FROM generate_series(1, 35) g")
    return control_row(
        "transactions",
        "chunked_backfill",
        incremental_column="txn_id",
        incremental_type="integer",
        primary_key_columns=["txn_id"],
        chunk_size=10,
    )


def test_plan_covers_the_range_in_half_open_chunks(loads, transactions):
    chunks = chunked_backfill.plan(loads.context(transactions))
    assert chunks == [Chunk(0, 4, None, 11), Chunk(1, 4, 11, 21), Chunk(2, 4, 21, 31), Chunk(3, 4, 31, None)]


def test_the_whole_backfill_loads_every_row_and_ends_in_incremental(loads, transactions):
    summary = loads.run(transactions)

    assert [r[0] for r in loads.rows(transactions, "txn_id")] == list(range(1, 36))
    assert (summary.inserted, summary.watermark, summary.switch_to_strategy) == (35, "35", "incremental")


def test_a_chunk_run_twice_or_retried_never_duplicates(loads, transactions, source_sql):
    ctx = loads.context(transactions)
    chunked_backfill.prepare(ctx)
    chunks = chunked_backfill.plan(ctx)
    for chunk in chunks:
        chunked_backfill.load_chunk(ctx, chunk)
    before = loads.rows(transactions)

    again = chunked_backfill.load_chunk(loads.context(transactions), chunks[1])

    assert again.inserted == 10
    assert again.chunk == {"index": 1, "count": 4, "lower": 11, "upper": 21}
    assert loads.rows(transactions) == before

    # a retry after the source changed inside the chunk takes the source's rows, and only those
    source_sql("DELETE FROM transactions WHERE txn_id = 15")
    source_sql("UPDATE transactions SET amount = 0 WHERE txn_id = 16")
    chunked_backfill.load_chunk(loads.context(transactions), chunks[1])
    after = {r[0]: r[1] for r in loads.rows(transactions, "txn_id", "amount")}
    assert 15 not in after and after[16] == 0 and len(after) == 34


def test_chunks_run_in_any_order(loads, transactions):
    ctx = loads.context(transactions)
    chunked_backfill.prepare(ctx)
    for chunk in reversed(chunked_backfill.plan(ctx)):
        chunked_backfill.load_chunk(loads.context(transactions), chunk)
    assert len(loads.rows(transactions)) == 35
    assert chunked_backfill.finalize(loads.context(transactions)).watermark == "35"


def test_null_cursors_land_in_the_first_chunk(loads, source_sql):
    source_sql("CREATE TABLE readings (reading_id int PRIMARY KEY, taken_on date)")
    source_sql("INSERT INTO readings SELECT g, date '2024-01-01' + g * 10 FROM generate_series(1, 9) g")
    source_sql("INSERT INTO readings VALUES (100, NULL)")
    row = control_row(
        "readings",
        "chunked_backfill",
        incremental_column="taken_on",
        incremental_type="date",
        primary_key_columns=["reading_id"],
        chunk_interval_days=30,
    )
    chunks = chunked_backfill.plan(loads.context(row))
    assert [(c.lower, c.upper) for c in chunks] == [
        (None, "2024-02-10"),
        ("2024-02-10", "2024-03-11"),
        ("2024-03-11", None),
    ]

    summary = loads.run(row)

    assert len(loads.rows(row)) == 10
    assert summary.watermark == date(2024, 3, 31).isoformat()


def test_too_many_chunks_says_what_to_raise(loads, transactions):
    tiny = ControlRow.from_mapping({**transactions.as_columns(), "chunk_size": 1})
    original = chunked_backfill.MAX_CHUNKS
    chunked_backfill.MAX_CHUNKS = 20
    try:
        with pytest.raises(TooManyChunks, match="makes 35 chunks, more than 20; raise chunk_size"):
            chunked_backfill.plan(loads.context(tiny))
    finally:
        chunked_backfill.MAX_CHUNKS = original
