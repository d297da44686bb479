"""check_and_load: count the changes past the watermark first; none means no load at all."""

from __future__ import annotations

import time

from include.dataloader.strategies import incremental
from include.dataloader.strategies.base import Interval, LoadContext, LoadSummary


def load(ctx: LoadContext, watermark: str | None = None, interval: Interval | None = None) -> LoadSummary:
    if interval is not None:  # a backfill reloads its interval whatever the count says
        return incremental.load(ctx, watermark, interval)
    started = time.monotonic()
    changes = count_changes(ctx, watermark)
    if changes == 0:
        return ctx.summary(started, skipped=True, watermark=watermark, message="skipped: no changes past the watermark")
    summary = incremental.load(ctx, watermark)
    summary.strategy = ctx.row.load_strategy
    summary.message = f"{changes} changes past the watermark"
    return summary


def count_changes(ctx: LoadContext, watermark: str | None) -> int:
    cursor = ctx.source.cursor(kind=ctx.row.incremental_type)
    return int(ctx.source.scalar_row(ctx.source.queries.change_count(cursor, watermark))["changes"])
