"""incremental: rows at or past the watermark, latest per primary key, merged by primary key.

The new watermark is MAX(cursor) of the committed target. An optional lookback re-reads a window below
the watermark for late-arriving rows; the merge makes re-reading harmless.
"""

from __future__ import annotations

import time

from include.dataloader.strategies.base import (
    LoadContext,
    LoadSummary,
    committed_watermark,
    latest_per_key,
    lookback_start,
    upsert,
)


def load(ctx: LoadContext, watermark: str | None = None) -> LoadSummary:
    started = time.monotonic()
    cursor = ctx.source.cursor(kind=ctx.row.incremental_type)
    start = lookback_start(cursor, watermark, ctx.row.lookback_minutes)
    df = ctx.source.read(ctx.source.queries.since(cursor, start))
    df = latest_per_key(df, ctx.keys, ctx.source.target_name(cursor.column))
    merged = upsert(ctx, df)
    return ctx.summary(
        started,
        rows_read=merged.rows,
        inserted=merged.inserted,
        updated=merged.updated,
        watermark=committed_watermark(ctx, cursor) or watermark,
        added_columns=merged.added_columns,
    )
