"""Source dialects, one module each. ``dialect_for(db_type)`` picks one by the dbconfig's db_type."""

from __future__ import annotations

from include.dataloader.dialects.base import (
    ColumnInfo,
    ConnectionParams,
    MissingDriver,
    SourceDialect,
    UnsupportedSourceType,
)
from include.dataloader.dialects.clickhouse import ClickHouseDialect
from include.dataloader.dialects.oracle import OracleDialect
from include.dataloader.dialects.postgres import PostgresDialect
from include.dataloader.dialects.snowflake import SnowflakeDialect
from include.dataloader.dialects.sqlserver import SqlServerDialect

DIALECTS: dict[str, type[SourceDialect]] = {
    d.name: d for d in (SqlServerDialect, OracleDialect, PostgresDialect, SnowflakeDialect, ClickHouseDialect)
}


def dialect_for(db_type: str) -> SourceDialect:
    try:
        return DIALECTS[db_type]()
    except KeyError:
        raise ValueError(f"db_type {db_type!r} has no dialect; use one of: {', '.join(DIALECTS)}") from None


__all__ = [
    "DIALECTS",
    "ColumnInfo",
    "ConnectionParams",
    "MissingDriver",
    "SourceDialect",
    "UnsupportedSourceType",
    "dialect_for",
]
