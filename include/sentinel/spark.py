"""Spark sides of a comparison: a Delta table read through a SparkSession (the local Sail engine), or
through Databricks SQL (databricks-sql-connector), each as the small DB-API-like connection the comparator
uses (``cursor()``, ``execute(sql, params)``, ``fetchall()``, ``close()``).

Values are bound as Spark SQL named parameters (``:name``, ``args=`` of ``SparkSession.sql``; native
parameters of the Databricks connector): never formatted into the SQL text.
"""

from __future__ import annotations

import re
from typing import Any

DESCRIBE = re.compile(r"^\s*DESCRIBE\s+TABLE\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)


class SparkCursor:
    def __init__(self, spark):
        self._spark = spark
        self._rows: list[tuple] = []

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        if match := DESCRIBE.match(sql):
            # Sail has no DESCRIBE for a Delta folder: the same rows from the table's schema
            schema = self._spark.sql(f"SELECT * FROM {match.group(1)} LIMIT 0").schema
            self._rows = [(f.name, f.dataType.simpleString(), None) for f in schema.fields]
            return
        self._rows = [tuple(row) for row in self._spark.sql(sql, args=params or None).collect()]

    def fetchall(self) -> list[tuple]:
        rows, self._rows = self._rows, []
        return rows

    def close(self) -> None:
        self._rows = []


class SparkConnection:
    """A SparkSession as a connection; closing it leaves the session (shared by the process) running."""

    autocommit = True

    def __init__(self, spark):
        self.spark = spark

    def cursor(self) -> SparkCursor:
        return SparkCursor(self.spark)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def local_connect(spark=None):
    """Opens connections to the local engine (Sail, in-process; its session is in UTC)."""

    def connect() -> SparkConnection:
        from include.local import spark as local_spark

        return SparkConnection(spark or local_spark.session())

    return connect


class DatabricksConnection:
    """A databricks-sql-connector connection; its cursors take the comparator's ``:name`` binds as native
    parameters. There is no transaction to set: reads only."""

    autocommit = True

    def __init__(self, conn):
        self._conn = conn

    def cursor(self):
        return self._conn.cursor()

    def close(self) -> None:
        self._conn.close()


def databricks_connect(*, server_hostname: str, http_path: str, access_token: str, sql_module=None):
    """Opens Databricks SQL connections (a SQL warehouse's host and HTTP path, a token). ``sql_module``:
    the connector's ``databricks.sql`` module (given by tests)."""

    def connect() -> DatabricksConnection:
        module = sql_module
        if module is None:
            from databricks import sql as module
        return DatabricksConnection(
            module.connect(server_hostname=server_hostname, http_path=http_path, access_token=access_token)
        )

    return connect


def spark_connector(database) -> Any:
    """A config side of ``db_type: spark``: Databricks SQL when it names a host (or an Airflow Databricks
    connection: host, ``extra.http_path``, the token as password), else the local engine."""
    if not (database.host or database.conn_id):
        return local_connect()
    s = database.settings()
    http_path = database.extra.get("http_path")
    if not http_path and database.conn_id:
        http_path = (database._connection().extra_dejson or {}).get("http_path")
    if not http_path:
        from include.sentinel.config import ConfigError

        raise ConfigError("db_type spark with a host: set extra.http_path (the SQL warehouse's HTTP path)")
    return databricks_connect(server_hostname=s["host"], http_path=http_path, access_token=s["password"])
