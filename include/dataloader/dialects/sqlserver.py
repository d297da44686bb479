from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from include.dataloader.dialects.base import ConnectionParams, SourceDialect, arrow_batches_of, exact_decimal, require

if TYPE_CHECKING:
    import pyarrow as pa


class SqlServerDialect(SourceDialect):
    name = "sqlserver"
    sqlglot = "tsql"
    jdbc_driver = "com.microsoft.sqlserver.jdbc.SQLServerDriver"
    default_port = 1433
    TYPES = {
        "bit": "boolean",
        "tinyint": "smallint",  # 0..255: unsigned, does not fit Spark's signed byte
        "smallint": "smallint",
        "int": "int",
        "bigint": "bigint",
        "decimal": exact_decimal,
        "numeric": exact_decimal,
        "money": "decimal(19,4)",
        "smallmoney": "decimal(10,4)",
        "float": "double",
        "real": "float",
        "date": "date",
        "datetime": "timestamp_ntz",
        "datetime2": "timestamp_ntz",
        "smalldatetime": "timestamp_ntz",
        "datetimeoffset": "timestamp",
        "time": "string",
        "char": "string",
        "varchar": "string",
        "nchar": "string",
        "nvarchar": "string",
        "text": "string",
        "ntext": "string",
        "xml": "string",
        "uniqueidentifier": "string",
        "binary": "binary",
        "varbinary": "binary",
        "image": "binary",
    }

    def timestamp_literal(self, value: datetime, *, with_time_zone: bool) -> exp.Expression:
        # ISO 8601 with a 'T' is read the same under every SET LANGUAGE / DATEFORMAT
        text = self._iso(value, with_time_zone=with_time_zone).replace(" ", "T")
        kind = "DATETIMEOFFSET(7)" if with_time_zone else "DATETIME2(7)"
        return exp.cast(exp.Literal.string(text), exp.DataType.build(kind, dialect="tsql"))

    def jdbc_url(self, params: ConnectionParams) -> str:
        return (
            f"jdbc:sqlserver://{params.host}:{params.port or self.default_port};"
            f"databaseName={params.database};encrypt=true;trustServerCertificate=false"
        )

    def connect(self, params: ConnectionParams) -> Any:
        pymssql = require("pymssql", "pymssql", self.name)
        return pymssql.connect(
            server=params.host,
            port=str(params.port or self.default_port),
            user=params.user,
            password=params.password,
            database=params.database,
            autocommit=True,
            **dict(params.options or {}),
        )

    def odbc_connection_string(self, params: ConnectionParams) -> str:
        """mssql-python's connection string; values in braces, so ``;`` or ``}`` in a password is safe."""
        fields = {
            "Server": f"tcp:{params.host},{params.port or self.default_port}",
            "Database": params.database,
            "UID": params.user,
            "PWD": params.password,
            "Encrypt": "yes",
            "TrustServerCertificate": "no",
        }
        return ";".join(f"{k}={{{v.replace('}', '}}')}}}" for k, v in fields.items() if v)

    def arrow_batches(
        self, params: ConnectionParams, query: str, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        # mssql-python, not pymssql: its cursor converts the ODBC result to Arrow in C++ (pymssql has no
        # Arrow output, and a row of Python objects per fetched row costs ten times the time)
        mssql = require("mssql_python", "mssql-python", self.name)
        conn = mssql.connect(self.odbc_connection_string(params), autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(query)
            yield from arrow_batches_of(cur.arrow_reader(batch_size=batch_rows), batch_rows)
        finally:
            conn.close()
