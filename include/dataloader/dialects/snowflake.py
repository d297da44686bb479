from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from include.dataloader.dialects.base import (
    ConnectionParams,
    SourceDialect,
    arrow_batches_of,
    decimal_or_integer,
    require,
)

if TYPE_CHECKING:
    import pyarrow as pa

# not in requirements.txt: snowflake-connector-python pins protobuf < 7, Airflow 3.3 needs protobuf 7
CONNECTOR_NOTE = (
    " where Airflow is not installed (the dataloader CLI or job in an environment of its own: the connector "
    "pins protobuf<7, Airflow 3.3 needs protobuf 7), or run the table on Databricks (execution_target: databricks)"
)


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
        connector = require("snowflake.connector", "snowflake-connector-python", self.name, CONNECTOR_NOTE)
        extra = dict(params.options or {})
        # host is the account URL (as the Spark connector's sfUrl); the Python connector wants the account
        account = (params.host or "").removesuffix(".snowflakecomputing.com")
        settings = {key: extra[key] for key in ("warehouse", "role", "schema") if extra.get(key)}
        return connector.connect(
            account=account,
            user=params.user,
            password=params.password,
            database=params.database,
            autocommit=True,
            **settings,
        )

    def arrow_batches(
        self, params: ConnectionParams, query: str, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        # the result's Arrow chunks as the warehouse cut them, sliced to batch_rows
        with self.connect(params) as conn, conn.cursor() as cur:
            cur.execute(query)
            found = False
            for batch in arrow_batches_of(cur.fetch_arrow_batches(), batch_rows):
                found = True
                yield batch
            if not found:  # no chunk at all: the empty table still has the result's schema
                yield from arrow_batches_of([cur.fetch_arrow_all(force_return_table=True)], batch_rows)
