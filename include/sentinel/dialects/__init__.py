"""Per-database SQL of the comparator: canonical row text, hashes, checksums, key ranges, literals."""

from __future__ import annotations

from include.sentinel.dialects.oracle import OracleSentinel
from include.sentinel.dialects.postgres import PostgresSentinel

DIALECTS = {"postgresql": PostgresSentinel, "oracle": OracleSentinel}


def dialect_for(db_type: str, *, timestamp_precision: int = 6):
    try:
        return DIALECTS[db_type](timestamp_precision=timestamp_precision)
    except KeyError:
        raise ValueError(f"no sentinel dialect for {db_type!r}; use one of: {', '.join(DIALECTS)}") from None
