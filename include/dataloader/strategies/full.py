"""full: the whole source table replaces the target in one atomic Delta commit.

Readers see the previous version until the commit, then the new one: never an empty or partial table.
"""

from __future__ import annotations

import time

from include.dataloader.strategies.base import Interval, LoadContext, LoadSummary, align, evolve_schema


def load(ctx: LoadContext, watermark: str | None = None, interval: Interval | None = None) -> LoadSummary:
    """An ``interval`` changes nothing here: the strategy reloads what it always reloads."""
    started = time.monotonic()
    df = ctx.source.read(ctx.source.queries.full(), parallel=True)
    added: list[str] = []
    if ctx.warehouse.exists(ctx.target):
        added = evolve_schema(ctx)
        df = align(ctx, df)
    ctx.warehouse.write(df, ctx.target, mode="overwrite")
    rows = ctx.warehouse.read(ctx.target).count()  # counted in the commit, not by reading the source twice
    return ctx.summary(started, rows_read=rows, inserted=rows, added_columns=added)
