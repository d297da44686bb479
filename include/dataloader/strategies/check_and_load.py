"""check_and_load: count the changes past the watermark first; none means no load at all."""

from __future__ import annotations

import time

from include.dataloader.strategies import incremental
from include.dataloader.strategies.base import Interval, LoadContext, LoadSummary, rows_at_watermark


def load(ctx: LoadContext, watermark: str | None = None, interval: Interval | None = None) -> LoadSummary:
    if interval is not None:  # a backfill reloads its interval whatever the count says
        return incremental.load(ctx, watermark, interval)
    started = time.monotonic()
    changes, at_watermark = count_changes(ctx, watermark)
    if changes == 0:
        return ctx.summary(
            started,
            skipped=True,
            watermark=watermark,
            watermark_rows=at_watermark,
            message="skipped: no changes past the watermark",
        )
    summary = incremental.load(ctx, watermark)
    summary.strategy = ctx.row.load_strategy
    summary.message = f"{changes} changes past the watermark"
    return summary


def count_changes(ctx: LoadContext, watermark: str | None) -> tuple[int, int | None]:
    """Source rows past the watermark, plus those at it that the target does not have yet; and the
    target's rows at the watermark (None without one), which a skipped run records as the load would.

    The load reads ``cursor >= watermark``, so the count must see rows committed later with the
    watermark's very value. Counting ``>=`` alone never reaches zero (the row that set the watermark is at
    it): the source's rows at the watermark are compared with the target's instead.
    """
    cursor = ctx.source.cursor(kind=ctx.row.incremental_type)
    counts = ctx.source.scalar_row(ctx.source.queries.change_count(cursor, watermark, at_watermark=True))
    if watermark is None:
        return int(counts["changes"]), None
    in_target = rows_at_watermark(ctx, cursor, watermark)
    return int(counts["changes"]) + max(int(counts["at_watermark"]) - in_target, 0), in_target
