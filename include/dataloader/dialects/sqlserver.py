from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlglot import exp

from include.dataloader.dialects.base import ConnectionParams, SourceDialect, exact_decimal


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
        import pymssql

        return pymssql.connect(
            server=params.host,
            port=str(params.port or self.default_port),
            user=params.user,
            password=params.password,
            database=params.database,
            autocommit=True,
            **dict(params.options or {}),
        )
