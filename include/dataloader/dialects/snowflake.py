from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlglot import exp

from include.dataloader.dialects.base import ConnectionParams, SourceDialect, decimal_or_integer


class SnowflakeDialect(SourceDialect):
    name = "snowflake"
    sqlglot = "snowflake"
    TYPES = {
        "number": decimal_or_integer,
        "decimal": decimal_or_integer,
        "numeric": decimal_or_integer,
        "float": "double",
        "double": "double",
        "text": "string",
        "varchar": "string",
        "string": "string",
        "char": "string",
        "boolean": "boolean",
        "date": "date",
        "timestamp_ntz": "timestamp_ntz",
        "timestamp_ltz": "timestamp",
        "timestamp_tz": "timestamp",
        "time": "string",
        "variant": "string",  # semi-structured values land as JSON text
        "object": "string",
        "array": "string",
        "binary": "binary",
    }

    def timestamp_literal(self, value: datetime, *, with_time_zone: bool) -> exp.Expression:
        # explicit: plain TIMESTAMP follows the account's TIMESTAMP_TYPE_MAPPING
        kind = "TIMESTAMP_TZ(9)" if with_time_zone else "TIMESTAMP_NTZ(9)"
        text = self._iso(value, with_time_zone=with_time_zone)
        return exp.cast(exp.Literal.string(text), exp.DataType.build(kind, dialect="snowflake"))

    spark_format = "snowflake"

    def jdbc_url(self, params: ConnectionParams) -> str:
        return f"jdbc:snowflake://{params.host}/?db={params.database}"

    def spark_read_options(self, params: ConnectionParams) -> dict[str, str]:
        """Options of the Spark Snowflake connector that Databricks ships (credentials separate)."""
        extra = dict(params.options or {})
        options = {"sfUrl": params.host or "", "sfDatabase": params.database or ""}
        for key in ("schema", "warehouse", "role"):
            if extra.get(key):
                options[f"sf{key.capitalize()}"] = extra[key]
        return options

    def connect(self, params: ConnectionParams) -> Any:
        try:
            import snowflake.connector
        except ImportError:
            raise ImportError(
                "a snowflake source needs snowflake-connector-python: pip install snowflake-connector-python "
                "beside requirements.txt (its protobuf pin clashes with Airflow's, so it is not in it)"
            ) from None
        # host is the account URL (<account>.snowflakecomputing.com) or the account identifier itself
        account = (params.host or "").removesuffix(".snowflakecomputing.com")
        return snowflake.connector.connect(
            account=account,
            user=params.user,
            password=params.password,
            database=params.database,
            autocommit=True,
            **dict(params.options or {}),  # warehouse, role, schema
        )
