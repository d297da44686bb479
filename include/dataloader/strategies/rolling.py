"""rolling: the last N days (by the rolling column) merged by primary key; older rows deleted.

With ``rolling_delete_missing``, target rows inside the window that the source no longer has are
deleted too (rows deleted at the source). The window is computed from the loader's clock (UTC).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from include.dataloader.queries import Cursor
from include.dataloader.strategies.base import (
    Interval,
    LoadContext,
    LoadSummary,
    delete_where,
    latest_per_key,
    spark_literal,
    upsert,
)
from include.dataloader.target import spark_ident


def window_start(ctx: LoadContext, cursor: Cursor) -> str:
    """Midnight (UTC) ``rolling_days`` before today (UTC); with its offset when the column has a time zone,
    so that the source and the target compare the same instant."""
    first_day = ctx.now.astimezone(UTC).date() - timedelta(days=ctx.row.rolling_days)
    if cursor.kind == "date":
        return first_day.isoformat()
    midnight = datetime.combine(first_day, datetime.min.time(), UTC if cursor.with_time_zone else None)
    return midnight.isoformat(sep=" ")


def load(ctx: LoadContext, watermark: str | None = None, interval: Interval | None = None) -> LoadSummary:
    """An ``interval`` changes nothing here: the strategy reloads what it always reloads."""
    started = time.monotonic()
    cursor = ctx.source.cursor(ctx.row.rolling_column)
    start = window_start(ctx, cursor)
    df = latest_per_key(ctx.source.read(ctx.source.queries.window(cursor, start)), ctx.keys, None)

    column = spark_ident(ctx.source.target_name(cursor.column))
    in_window = f"t.{column} >= {spark_literal(cursor, start)}"
    merged = upsert(ctx, df, delete_missing_where=in_window if ctx.row.rolling_delete_missing else None)
    expired = delete_where(ctx, f"{column} < {spark_literal(cursor, start)}")
    return ctx.summary(
        started,
        rows_read=merged.rows,
        inserted=merged.inserted,
        updated=merged.updated,
        deleted=merged.deleted + expired,
        message=f"window from {start}",
        added_columns=merged.added_columns,
    )
