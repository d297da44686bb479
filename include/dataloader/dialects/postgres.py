from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from include.dataloader.dialects.base import (
    TEXT,
    AsText,
    ConnectionParams,
    SourceDialect,
    arrow_batches_of,
    exact_decimal,
    require,
)

if TYPE_CHECKING:
    import pyarrow as pa


class PostgresDialect(SourceDialect):
    name = "postgresql"
    sqlglot = "postgres"
    jdbc_driver = "org.postgresql.Driver"
    default_port = 5432
    # every type of pg_catalog a column can have (tests/dataloader/dialects/test_postgres_types.py walks
    # pg_type), by the names information_schema.columns.data_type gives them
    TYPES = {
        "smallint": "smallint",
        "integer": "int",
        "bigint": "bigint",
        "numeric": exact_decimal,  # numeric(p, 0) stays decimal: PostgreSQL users declare it on purpose
        "decimal": exact_decimal,
        "real": "float",
        "double precision": "double",
        "oid": AsText("bigint"),  # unsigned 32 bits: the driver wraps it to a negative int32
        "boolean": "boolean",
        "text": "string",
        "character varying": "string",
        "character": "string",
        "name": "string",
        "uuid": TEXT,  # drivers hand over 16 raw bytes (Arrow's uuid extension)
        "json": "string",
        "jsonb": "string",
        "date": "date",
        "timestamp without time zone": "timestamp_ntz",
        "timestamp with time zone": "timestamp",
        "bytea": "binary",
        # no Delta type holds these faithfully, or drivers hand them over as opaque bytes: their text form
        '"char"': TEXT,
        "money": TEXT,  # formatted by the server's lc_monetary
        "time without time zone": TEXT,
        "time with time zone": TEXT,
        "interval": TEXT,
        "bit": TEXT,
        "bit varying": TEXT,
        "inet": TEXT,
        "cidr": TEXT,
        "macaddr": TEXT,
        "macaddr8": TEXT,
        "point": TEXT,
        "line": TEXT,
        "lseg": TEXT,
        "box": TEXT,
        "path": TEXT,
        "polygon": TEXT,
        "circle": TEXT,
        "xml": TEXT,
        "jsonpath": TEXT,
        "tsvector": TEXT,
        "gtsvector": TEXT,
        "tsquery": TEXT,
        "pg_lsn": TEXT,
        "pg_snapshot": TEXT,
        "txid_snapshot": TEXT,
        "xid": TEXT,
        "xid8": TEXT,
        "cid": TEXT,
        "tid": TEXT,
        "aclitem": TEXT,
        "refcursor": TEXT,
        "regclass": TEXT,
        "regcollation": TEXT,
        "regconfig": TEXT,
        "regdictionary": TEXT,
        "regnamespace": TEXT,
        "regoper": TEXT,
        "regoperator": TEXT,
        "regproc": TEXT,
        "regprocedure": TEXT,
        "regrole": TEXT,
        "regtype": TEXT,
        "array": TEXT,  # information_schema's data_type of every array
        "user-defined": TEXT,  # enums, composites, extension types (citext, hstore, geometry, ...)
    }
    TEXT_TYPE = "TEXT"

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
            "",
            host=params.host,
            port=params.port,
            dbname=params.database,
            user=params.user,
            password=params.password,
            **dict(params.options or {}),  # libpq options from the connection extra: sslmode, ...
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
