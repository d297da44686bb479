"""A source database as an Airflow connection: in Airflow, a dbconfig's ``db_config_key`` is its connection id.

Host, port, schema (the database; Oracle: the service name; Snowflake: host is the account), login,
password; ``extra`` holds driver options (Snowflake ``warehouse``/``role``/``schema``, PostgreSQL
``sslmode``, ClickHouse ``secure``, ...), or ``url``: the whole connection as one URL (ClickHouse
``http://...`` or an embedded ``chdb:///path``; a libpq URI). Whatever secrets backend Airflow is set up
with serves it. The load (local engine) and the change sensor both resolve their source here; a Databricks
job resolves the same dbconfig from its secret scope instead (``include/dataloader/connections.py``),
since it has no Airflow.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from include.dataloader.dialects import ConnectionParams


class SourceConnectionMissing(LookupError):
    pass


def connection_params(conn: Any) -> ConnectionParams:
    """ConnectionParams from an Airflow Connection (secrets included: never log the result)."""
    extra = dict(conn.extra_dejson) if conn.extra else {}
    url = extra.pop("url", None)  # a whole URL (a chdb:///path, a libpq URI) instead of the fields
    return ConnectionParams(
        host=conn.host or None,
        port=int(conn.port) if conn.port else None,
        database=conn.schema or None,
        user=conn.login or None,
        password=conn.password or None,
        url=url or None,
        options={k: v for k, v in extra.items() if isinstance(v, str | int | bool)},
    )


def _missing(db_config_key: str) -> SourceConnectionMissing:
    return SourceConnectionMissing(
        f"source {db_config_key!r}: no Airflow connection {db_config_key!r} (in Airflow a dbconfig's "
        "db_config_key is its connection id). Add it to the secrets backend (Azure Key Vault: secret "
        f"airflow-connections-{db_config_key}), or as AIRFLOW_CONN_{db_config_key.upper()}, with host, port, "
        "schema (the database), login and password"
    )


def source_params(db_config_key: str) -> ConnectionParams:
    try:
        return connection_params(BaseHook.get_connection(db_config_key))
    except AirflowNotFoundException:
        raise _missing(db_config_key) from None


async def asource_params(db_config_key: str) -> ConnectionParams:
    """As :func:`source_params`, for a trigger (the triggerer's event loop)."""
    try:
        return connection_params(await BaseHook.aget_connection(db_config_key))
    except AirflowNotFoundException:
        raise _missing(db_config_key) from None
