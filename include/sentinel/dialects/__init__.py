"""Per-database SQL of the comparator: canonical row text, hashes, checksums, key ranges, literals."""

from __future__ import annotations

from include.sentinel.dialects.base import SentinelDialect
from include.sentinel.dialects.clickhouse import ClickHouseSentinel
from include.sentinel.dialects.oracle import OracleSentinel
from include.sentinel.dialects.postgres import PostgresSentinel
from include.sentinel.dialects.snowflake import SnowflakeSentinel
from include.sentinel.dialects.spark import SparkSentinel
from include.sentinel.dialects.sqlserver import SqlServerSentinel

DIALECTS: dict[str, type[SentinelDialect]] = {
    d.name: d
    for d in (OracleSentinel, PostgresSentinel, SqlServerSentinel, SnowflakeSentinel, ClickHouseSentinel, SparkSentinel)
}


def dialect_for(db_type: str, **options) -> SentinelDialect:
    """The dialect of ``db_type``; ``options``: timestamp_precision, float_digits, portable (the canonical
    text every dialect writes alike: two sides of different engines)."""
    try:
        return DIALECTS[db_type](**options)
    except KeyError:
        raise ValueError(f"no sentinel dialect for {db_type!r}; use one of: {', '.join(DIALECTS)}") from None
