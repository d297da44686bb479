"""Connections to one side of a comparison, and the checks made before anything runs: each side's settings
complete and its driver installed (the two sides may be different engines)."""

from __future__ import annotations

import importlib.util
import sys

from include.dataloader.dialects import ConnectionParams, dialect_for
from include.sentinel.config import CompareConfig, ConfigError, Database

# db_type -> (module, pip package) of its driver
DRIVERS = {
    "postgresql": ("psycopg", "psycopg"),
    "oracle": ("oracledb", "oracledb"),
    "sqlserver": ("pymssql", "pymssql"),
    "clickhouse": ("clickhouse_connect", "clickhouse-connect"),
    "snowflake": ("snowflake.connector", "snowflake-connector-python (see the README: not in requirements.txt)"),
    "spark": ("pyspark", "pyspark-client"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
    except ValueError:  # imported already, without a spec (a module made at runtime)
        return sys.modules.get(module) is not None


def validate(config: CompareConfig) -> None:
    """Refuse, before anything is written, what would fail later: an unset password or URL variable, an
    unreadable Airflow connection, a missing driver, an unset audit variable. The two sides may be different
    kinds of database: they are then compared in the portable canonical text (see the README)."""
    for name, database in (("source_database", config.source), ("target_database", config.target)):
        module, package = DRIVERS[database.db_type]
        if not _installed(module):
            raise ConfigError(f"{name}.db_type {database.db_type}: its driver is not installed; pip install {package}")
        if database.db_type == "spark":
            continue  # the local engine, or Databricks SQL from the Airflow connection (read when connecting)
        try:
            database.url() if database.db_type == "postgresql" else database.settings()
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    if config.audit_db_url_env:
        config.audit_db_url()


def connection_params(database: Database) -> ConnectionParams:
    """One side's settings as the loader's connection parameters (secrets included: never log them)."""
    if database.db_type == "postgresql":
        return ConnectionParams(url=database.url())
    s = database.settings()
    return ConnectionParams(
        host=s["host"],
        port=s["port"],
        database=s["database"],
        user=s["username"],
        password=s["password"],
        options=database.extra,
    )


def connector(database: Database):
    """Opens connections to one side through the loader's driver of its engine (``SourceDialect.connect``:
    psycopg, oracledb in thin mode, pymssql, clickhouse-connect, snowflake-connector-python), so that a
    comparison reaches a database exactly as a load of it does; the local engine or Databricks SQL for
    ``spark``."""
    if database.db_type == "spark":
        from include.sentinel.spark import spark_connector

        return spark_connector(database)
    module, package = DRIVERS[database.db_type]
    if not _installed(module):  # said now, before a session is written, not at the first connection
        raise ConfigError(f"db_type {database.db_type}: pip install {package}")
    dialect, params = dialect_for(database.db_type), connection_params(database)
    return lambda: dialect.connect(params)
