from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlglot import exp

from include.dataloader.dialects.base import TEXT, AsText, ConnectionParams, SourceDialect, exact_decimal


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
