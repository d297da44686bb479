"""append_only: rows at or past the watermark appended, never updated.

Rows at exactly the watermark (or inside the lookback) are read again; those already in the target
(same primary key, or the same values in every column when there is no key) are not appended twice.
"""

from __future__ import annotations

import time

from include.dataloader.strategies.base import (
    Interval,
    LoadContext,
    LoadSummary,
    committed_watermark,
    evolve_schema,
    lookback_start,
    rows_at_watermark,
    stage,
)
from include.dataloader.strategies.matching import not_in_target


def load(ctx: LoadContext, watermark: str | None = None, interval: Interval | None = None) -> LoadSummary:
    """With an ``interval``, the rows with ``start <= cursor < end`` not yet in the target are appended and
    the watermark is left alone."""
    started = time.monotonic()
    cursor = ctx.source.cursor(kind=ctx.row.incremental_type)
    if interval is not None:
        start = interval[0]
        df = ctx.source.read(ctx.source.queries.chunk(cursor, *interval))
    else:
        start = lookback_start(cursor, watermark, ctx.row.lookback_minutes)
        df = ctx.source.read(ctx.source.queries.since(cursor, start))

    if not ctx.warehouse.exists(ctx.target):
        ctx.warehouse.write(df, ctx.target, mode="overwrite")
        rows = ctx.warehouse.read(ctx.target).count()
        new_watermark = None if interval else committed_watermark(ctx, cursor)
        return ctx.summary(
            started,
            rows_read=rows,
            inserted=rows,
            watermark=new_watermark,
            watermark_rows=rows_at_watermark(ctx, cursor, new_watermark),
        )

    added = evolve_schema(ctx)
    staging = stage(ctx, df)
    try:
        # against the whole target: a key can come back with a newer cursor, far below the watermark
        keys = ctx.keys or [f.name for f in ctx.warehouse.read(staging).schema.fields]
        new_rows = not_in_target(ctx.warehouse, ctx.target, staging, keys, prefer=ctx.source.target_name(cursor.column))
        read = ctx.warehouse.read(staging).count()
        appended = new_rows.count()
        if appended:
            ctx.warehouse.write(new_rows, ctx.target, mode="append")
    finally:
        ctx.warehouse.drop(staging)
    new_watermark = None if interval else committed_watermark(ctx, cursor) or watermark
    return ctx.summary(
        started,
        rows_read=read,
        inserted=appended,
        watermark=new_watermark,
        watermark_rows=rows_at_watermark(ctx, cursor, new_watermark),
        added_columns=added,
    )
