"""incremental: rows at or past the watermark, latest per primary key, merged by primary key.

The new watermark is MAX(cursor) of the committed target. An optional lookback re-reads a window below
the watermark for late-arriving rows; the merge makes re-reading harmless.

With an ``interval`` (a backfill run's data interval), the rows with ``start <= cursor < end`` are read
and merged instead, and the watermark is left alone.
"""

from __future__ import annotations

import time

from include.dataloader.strategies.base import (
    Interval,
    LoadContext,
    LoadSummary,
    committed_watermark,
    latest_per_key,
    lookback_start,
    rows_at_watermark,
    upsert,
)


def load(ctx: LoadContext, watermark: str | None = None, interval: Interval | None = None) -> LoadSummary:
    started = time.monotonic()
    cursor = ctx.source.cursor(kind=ctx.row.incremental_type)
    if interval is not None:
        query = ctx.source.queries.chunk(cursor, *interval)
    else:
        query = ctx.source.queries.since(cursor, lookback_start(cursor, watermark, ctx.row.lookback_minutes))
    df = ctx.source.read(query)
    df = latest_per_key(df, ctx.keys, ctx.source.target_name(cursor.column))
    merged = upsert(ctx, df)
    new_watermark = None if interval else committed_watermark(ctx, cursor) or watermark
    return ctx.summary(
        started,
        rows_read=merged.rows,
        inserted=merged.inserted,
        updated=merged.updated,
        watermark=new_watermark,
        watermark_rows=rows_at_watermark(ctx, cursor, new_watermark),
        message=f"reloaded [{interval[0]}, {interval[1]})" if interval else None,
        added_columns=merged.added_columns,
    )
