from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlglot import exp

from include.dataloader.dialects.base import ConnectionParams, SourceDialect, exact_decimal


class PostgresDialect(SourceDialect):
    name = "postgresql"
    sqlglot = "postgres"
    jdbc_driver = "org.postgresql.Driver"
    default_port = 5432
    TYPES = {
        "smallint": "smallint",
        "integer": "int",
        "bigint": "bigint",
        "numeric": exact_decimal,  # numeric(p, 0) stays decimal: PostgreSQL users declare it on purpose
        "decimal": exact_decimal,
        "real": "float",
        "double precision": "double",
        "boolean": "boolean",
        "text": "string",
        "character varying": "string",
        "character": "string",
        "uuid": "string",
        "json": "string",
        "jsonb": "string",
        "date": "date",
        "timestamp without time zone": "timestamp_ntz",
        "timestamp with time zone": "timestamp",
        "time without time zone": "string",
        "bytea": "binary",
    }

    def timestamp_literal(self, value: datetime, *, with_time_zone: bool) -> exp.Expression:
        kind = "TIMESTAMPTZ" if with_time_zone else "TIMESTAMP"
        return exp.cast(exp.Literal.string(self._iso(value, with_time_zone=with_time_zone)), exp.DataType.build(kind))

    def jdbc_url(self, params: ConnectionParams) -> str:
        return f"jdbc:postgresql://{params.host}:{params.port or self.default_port}/{params.database}"

    def connect(self, params: ConnectionParams) -> Any:
        import psycopg  # libpq: unix sockets and every libpq option (sslmode, ...) work
        from psycopg.conninfo import make_conninfo

        conninfo = params.url or make_conninfo(
            "",
            host=params.host,
            port=params.port,
            dbname=params.database,
            user=params.user,
            password=params.password,
            **dict(params.options or {}),
        )
        return psycopg.connect(conninfo, autocommit=True)
