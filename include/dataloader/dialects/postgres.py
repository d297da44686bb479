from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from include.dataloader.dialects.base import ConnectionParams, SourceDialect, arrow_batches_of, exact_decimal, require

if TYPE_CHECKING:
    import pyarrow as pa


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

    def conninfo(self, params: ConnectionParams) -> str:
        """A libpq connection string: a URL as given, or the fields (unix sockets and every libpq option work)."""
        if params.url:
            return params.url
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            "", host=params.host, port=params.port, dbname=params.database, user=params.user, password=params.password
        )

    def connect(self, params: ConnectionParams) -> Any:
        psycopg = require("psycopg", "psycopg", self.name)
        return psycopg.connect(self.conninfo(params), autocommit=True)

    def arrow_batches(
        self, params: ConnectionParams, query: str, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        # ADBC: libpq's binary COPY of the query, decoded into Arrow in C and streamed batch by batch
        adbc = require("adbc_driver_postgresql.dbapi", "adbc-driver-postgresql", self.name)
        with adbc.connect(self.conninfo(params)) as conn, conn.cursor() as cur:
            cur.execute(query)
            yield from arrow_batches_of(cur.fetch_record_batch(), batch_rows)
