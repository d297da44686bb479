"""Connections to one side of a comparison, and the checks made before anything runs: each side's settings
complete and its driver installed (the two sides may be different engines)."""

from __future__ import annotations

import importlib.util

import psycopg

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


def connector(database: Database):
    """Opens connections to one side: psycopg (PostgreSQL), oracledb in thin mode (Oracle, no client
    install), pymssql (SQL Server), clickhouse-connect (ClickHouse), snowflake-connector-python (Snowflake:
    not in requirements.txt, its protobuf pin clashes with Airflow's; install it beside)."""
    if database.db_type == "postgresql":
        url = database.url()
        return lambda: psycopg.connect(url, autocommit=True)
    if database.db_type == "spark":
        from include.sentinel.spark import spark_connector

        return spark_connector(database)
    s = database.settings()
    if database.db_type == "oracle":
        import oracledb

        dsn = f"{s['host']}:{s['port']}/{s['database']}"
        return lambda: oracledb.connect(user=s["username"], password=s["password"], dsn=dsn, **database.extra)
    if database.db_type == "sqlserver":
        import pymssql

        return lambda: pymssql.connect(
            server=s["host"],
            port=str(s["port"]),
            user=s["username"],
            password=s["password"],
            database=s["database"],
            autocommit=True,
            **database.extra,
        )
    if database.db_type == "clickhouse":
        from clickhouse_connect import dbapi

        return lambda: dbapi.connect(
            host=s["host"],
            port=s["port"],
            username=s["username"] or "default",
            password=s["password"] or "",
            database=s["database"],
            **database.extra,
        )
    try:
        import snowflake.connector
    except ImportError:
        raise ConfigError("db_type snowflake: pip install snowflake-connector-python (see the README)") from None
    return lambda: snowflake.connector.connect(
        account=s["host"],
        user=s["username"],
        password=s["password"],
        database=s["database"],
        autocommit=True,
        **database.extra,
    )
