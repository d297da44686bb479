"""chunked_backfill: a large table loaded in key ranges, each chunk on its own, then switched to incremental.

Chunks are half-open ranges of the cursor, ``[lower, upper)``; the first is open below and also takes the
rows whose cursor is NULL, the last is open above, so together they cover the whole table. A chunk
overwrites exactly its own range of the target (``replaceWhere``): running it twice, or retrying it after
a failure, leaves the same rows. (The original design appended every chunk after the first, so a
retried chunk duplicated its rows.)

The Airflow layer maps ``load_chunk`` over ``plan``; ``load`` runs them one after another.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from include.dataloader.queries import Cursor, SourceQueries
from include.dataloader.strategies.base import (
    Interval,
    LoadContext,
    LoadSummary,
    align,
    committed_watermark,
    evolve_schema,
    spark_literal,
)

DEFAULT_CHUNK_SIZE = 100_000  # ids per chunk, integer cursors
DEFAULT_CHUNK_DAYS = 30  # days per chunk, date and timestamp cursors
MAX_CHUNKS = 1000  # Airflow maps at most max_map_length (1024) tasks


class TooManyChunks(ValueError):
    pass


@dataclass(frozen=True)
class Chunk:
    index: int
    count: int
    lower: int | str | None  # None: open below (and the NULL cursors)
    upper: int | str | None  # None: open above

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


def _cursor(ctx: LoadContext) -> Cursor:
    return ctx.source.cursor(kind=ctx.row.incremental_type)


def plan(ctx: LoadContext) -> list[Chunk]:
    """Chunk boundaries from the source's MIN and MAX of the cursor."""
    cursor = _cursor(ctx)
    bounds = ctx.source.scalar_row(ctx.source.queries.bounds(cursor))
    low, high = bounds["lower_bound"], bounds["upper_bound"]
    if low is None:  # empty, or only NULL cursors
        return [Chunk(0, 1, None, None)]
    edges = list(_edges(ctx, cursor, low, high))
    if len(edges) + 1 > MAX_CHUNKS:
        raise TooManyChunks(
            f"{ctx.row.control_key}: {cursor.column} from {low} to {high} makes {len(edges) + 1} chunks, more "
            f"than {MAX_CHUNKS}; raise chunk_size (integer cursors) or chunk_interval_days (dates, timestamps)"
        )
    bounds_list = [None, *edges, None]
    count = len(bounds_list) - 1
    return [Chunk(i, count, bounds_list[i], bounds_list[i + 1]) for i in range(count)]


def _edges(ctx: LoadContext, cursor: Cursor, low: Any, high: Any):
    if cursor.kind == "integer":
        step = ctx.row.chunk_size or DEFAULT_CHUNK_SIZE
        edge = int(low) + step
        while edge <= int(high):
            yield edge
            edge += step
        return
    step = timedelta(days=ctx.row.chunk_interval_days or DEFAULT_CHUNK_DAYS)
    if cursor.kind == "date":
        low, high = _as_date(low), _as_date(high)
        edge = low + step
        while edge <= high:
            yield edge.isoformat()
            edge += step
        return
    low, high = _as_datetime(low, cursor), _as_datetime(high, cursor)
    edge = low + step
    while edge <= high:
        yield edge.isoformat(sep=" ")
        edge += step


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _as_datetime(value: Any, cursor: Cursor) -> datetime:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    # Spark hands instants back as naive local times; pin them to UTC
    return value.astimezone(UTC) if cursor.with_time_zone else value


def prepare(ctx: LoadContext) -> list[str]:
    """Create the target (empty, with the source's columns and types) or evolve its schema.

    Runs before the chunks so that they can run in any order, or side by side.
    """
    if not ctx.warehouse.exists(ctx.target):
        ctx.warehouse.write(ctx.source.read(ctx.source.queries.schema_probe()), ctx.target, mode="overwrite")
        return []
    return evolve_schema(ctx)


def target_predicate(ctx: LoadContext, chunk: Chunk) -> str | None:
    """The chunk's range as a Spark SQL predicate on the target."""
    cursor = _cursor(ctx)

    def literal(c: Cursor, value: Any) -> exp.Expression:
        return sqlglot.parse_one(spark_literal(c, value), read="spark")

    condition = SourceQueries.chunk_condition(
        cursor, chunk.lower, chunk.upper, lambda name: exp.column(ctx.source.target_name(name), quoted=True), literal
    )
    return condition.sql(dialect="spark") if condition is not None else None


def load_chunk(ctx: LoadContext, chunk: Chunk) -> LoadSummary:
    """Load one chunk, replacing exactly its range of the target."""
    started = time.monotonic()
    cursor = _cursor(ctx)
    query = ctx.source.queries.chunk(cursor, chunk.lower, chunk.upper)
    df = align(ctx, ctx.source.read(query, parallel=True))
    predicate = target_predicate(ctx, chunk)
    if predicate is None:  # a single chunk covers everything
        ctx.warehouse.write(df, ctx.target, mode="overwrite")
        rows = ctx.warehouse.read(ctx.target).count()
    else:
        ctx.warehouse.write(df, ctx.target, mode="overwrite", replace_where=predicate)
        rows = ctx.spark.sql(f"SELECT count(*) AS n FROM {ctx.warehouse.ref(ctx.target)} WHERE {predicate}").collect()[
            0
        ]["n"]
    return ctx.summary(started, rows_read=rows, inserted=rows, chunk=chunk.as_dict())


def finalize(ctx: LoadContext) -> LoadSummary:
    """The backfill's result: the watermark of everything loaded, and the switch to incremental."""
    started = time.monotonic()
    rows = ctx.warehouse.read(ctx.target).count() if ctx.warehouse.exists(ctx.target) else 0
    return ctx.summary(
        started,
        rows_read=rows,
        inserted=rows,  # a backfill (re)writes every row of the table
        watermark=committed_watermark(ctx, _cursor(ctx)),
        switch_to_strategy="incremental",
        message=f"backfill complete: {rows} rows",
    )


def load(ctx: LoadContext, watermark: str | None = None, interval: Interval | None = None) -> LoadSummary:
    """Plan, prepare, every chunk in turn, finalize: the backfill in one process."""
    started = time.monotonic()
    added = prepare(ctx)
    chunks = [load_chunk(ctx, chunk) for chunk in plan(ctx)]
    summary = finalize(ctx)
    summary.inserted = sum(c.inserted for c in chunks)
    summary.added_columns = added
    summary.duration_seconds = round(time.monotonic() - started, 3)
    summary.message = f"backfill complete: {len(chunks)} chunks, {summary.rows_read} rows"
    return summary
