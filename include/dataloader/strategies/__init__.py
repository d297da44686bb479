"""The six load strategies, one module each; every ``load(ctx, watermark)`` returns a LoadSummary."""

from __future__ import annotations

from collections.abc import Callable

from include.dataloader.strategies import append_only, check_and_load, chunked_backfill, full, incremental, rolling
from include.dataloader.strategies.base import LoadContext, LoadSummary

Strategy = Callable[..., LoadSummary]  # (ctx, watermark, interval=None)

STRATEGIES: dict[str, Strategy] = {
    "full": full.load,
    "incremental": incremental.load,
    "append_only": append_only.load,
    "rolling": rolling.load,
    "check_and_load": check_and_load.load,
    "chunked_backfill": chunked_backfill.load,
}

__all__ = ["STRATEGIES", "LoadContext", "LoadSummary", "Strategy"]
