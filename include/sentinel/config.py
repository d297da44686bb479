"""The comparison config (the seeds' YAML), validated with errors that name the table and the field."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DB_TYPES = ("oracle", "postgresql", "sqlserver", "snowflake", "clickhouse", "spark")
DEFAULT_PORTS = {"oracle": 1521, "postgresql": 5432, "sqlserver": 1433, "clickhouse": 8123}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Database:
    """Connection settings. The password is never in the file: it comes from ``password_env`` (a variable
    name), or with the other settings from the Airflow connection ``conn_id``; fields set in the file win
    over the connection's."""

    db_type: str
    host: str | None = None  # Snowflake: the account identifier
    port: int | None = None
    database: str | None = None  # Oracle: the service name
    username: str | None = None
    password_env: str | None = None
    url_env: str | None = None  # PostgreSQL: a whole libpq URL in an environment variable
    conn_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # passed to the driver (Snowflake warehouse, role)

    def _password_from_env(self) -> str:
        try:
            return os.environ[self.password_env]
        except KeyError:
            raise ConfigError(f"set the environment variable {self.password_env} (password_env)") from None

    def _connection(self):
        from airflow.sdk import BaseHook  # only when a conn_id is configured: the library runs without Airflow

        try:
            return BaseHook.get_connection(self.conn_id)
        except Exception as exc:  # AirflowNotFoundException, or no Airflow configured here
            raise ConfigError(f"conn_id {self.conn_id!r}: cannot read the Airflow connection: {exc}") from None

    def settings(self) -> dict[str, Any]:
        """host, port, database, username and password, from the file and then the Airflow connection."""
        values = {"host": self.host, "port": self.port, "database": self.database, "username": self.username}
        password = self._password_from_env() if self.password_env else None
        if self.conn_id:
            conn = self._connection()  # read once: a lookup may go to a secrets backend
            found = {"host": conn.host, "port": conn.port, "database": conn.schema, "username": conn.login}
            values = {k: v if v is not None else found[k] for k, v in values.items()}
            password = password if self.password_env else conn.password
        values["port"] = values["port"] or DEFAULT_PORTS.get(self.db_type)
        return values | {"password": password}

    def secrets(self) -> list[str]:
        """The password and URL this side would use, for redacting error messages (never raises)."""
        return [v for name in (self.password_env, self.url_env) if name and (v := os.environ.get(name))]

    def url(self) -> str:
        if self.url_env:
            try:
                return os.environ[self.url_env]
            except KeyError:
                raise ConfigError(f"set the environment variable {self.url_env} (url_env)") from None
        from psycopg.conninfo import make_conninfo

        s = self.settings()
        return make_conninfo(
            "", host=s["host"], port=s["port"], dbname=s["database"], user=s["username"], password=s["password"]
        )


@dataclass(frozen=True)
class TableSpec:
    table_name: str
    primary_key: tuple[str, ...]
    schema: str | None = None
    chunk_size: int = 10_000
    columns: tuple[str, ...] | None = None  # None: every column both sides have
    exclude_columns: tuple[str, ...] = ()
    where: str | None = None
    # the target's own name and filter when they differ from the source's (another engine: a Delta folder,
    # a filter in its dialect)
    target_schema: str | None = None
    target_table: str | None = None
    target_where: str | None = None

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table_name}" if self.schema else self.table_name


@dataclass(frozen=True)
class CompareConfig:
    source: Database
    target: Database
    tables: tuple[TableSpec, ...]
    max_threads: int = 4
    output_dir: Path = field(default_factory=lambda: Path("sentinel_output"))
    timestamp_precision: int = 6  # fractional digits compared
    float_digits: int | None = None  # floats compared at this many significant digits (None: exactly)
    audit_db_url_env: str | None = None  # a variable holding the control database URL: audit there too

    def audit_db_url(self) -> str | None:
        if not self.audit_db_url_env:
            return None
        try:
            return os.environ[self.audit_db_url_env]
        except KeyError:
            raise ConfigError(
                f"options.audit_db_url_env: set the environment variable {self.audit_db_url_env} "
                "(the control database URL for the sentinel_audit table), or remove the option"
            ) from None

    def secrets(self) -> list[str]:
        audit = os.environ.get(self.audit_db_url_env) if self.audit_db_url_env else None
        return [*self.source.secrets(), *self.target.secrets(), *([audit] if audit else [])]

    @property
    def cross_engine(self) -> bool:
        return self.source.db_type != self.target.db_type

    def dialect(self, side: str = "source"):
        """The side's dialect; two engines compare in the portable canonical text."""
        from include.sentinel.dialects import dialect_for

        return dialect_for(
            (self.source if side == "source" else self.target).db_type,
            timestamp_precision=self.timestamp_precision,
            float_digits=self.float_digits,
            portable=self.cross_engine,
        )


def _database(raw: Any, name: str) -> Database:
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping with db_type, host, port, database, username")
    if "password" in raw:
        raise ConfigError(f"{name}.password: do not put passwords in the file; set password_env to a variable name")
    db_type = raw.get("db_type", "oracle")
    if db_type not in DB_TYPES:
        raise ConfigError(f"{name}.db_type: {db_type!r} is not supported; use one of: {', '.join(DB_TYPES)}")
    known = {"db_type", "host", "port", "database", "username", "password_env", "url_env", "conn_id", "extra"}
    if unknown := set(raw) - known:
        raise ConfigError(f"{name}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    if not isinstance(raw.get("extra", {}), dict):
        raise ConfigError(f"{name}.extra: expected a mapping of driver options")
    return Database(**{**raw, "db_type": db_type})


def _table(raw: Any, index: int) -> TableSpec:
    if not isinstance(raw, dict) or not raw.get("table_name"):
        raise ConfigError(f"tables[{index}]: table_name is required")
    label = raw["table_name"]
    pk = raw.get("primary_key")
    if isinstance(pk, str):
        pk = [pk]
    if not pk:
        raise ConfigError(f"table {label}: primary_key is required (a column or a list of columns)")
    chunk = raw.get("chunk_size", 10_000)
    if not isinstance(chunk, int) or chunk <= 0:
        raise ConfigError(f"table {label}: chunk_size must be a positive whole number, got {chunk!r}")
    known = {"table_name", "schema", "primary_key", "chunk_size", "columns", "exclude_columns", "where"}
    known |= {"target_schema", "target_table", "target_where"}
    if unknown := set(raw) - known:
        raise ConfigError(f"table {label}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    return TableSpec(
        table_name=label,
        schema=raw.get("schema"),
        primary_key=tuple(pk),
        chunk_size=chunk,
        columns=tuple(raw["columns"]) if raw.get("columns") else None,
        exclude_columns=tuple(raw.get("exclude_columns") or ()),
        where=raw.get("where"),
        target_schema=raw.get("target_schema"),
        target_table=raw.get("target_table"),
        target_where=raw.get("target_where"),
    )


def _whole(options: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    value = options.get(name, default)
    if value is not None and (not isinstance(value, int) or not low <= value <= high):
        raise ConfigError(f"options.{name}: expected a whole number from {low} to {high}, got {value!r}")
    return value


def load_config(path: Path) -> CompareConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(raw)


def parse_config(raw: dict[str, Any]) -> CompareConfig:
    tables = raw.get("tables")
    if not tables:
        raise ConfigError("tables: list at least one table to compare")
    options = raw.get("options") or {}
    known = {"max_threads", "output_dir", "timestamp_precision", "float_digits", "audit_db_url_env"}
    if unknown := set(options) - known:
        raise ConfigError(f"options: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    return CompareConfig(
        source=_database(raw.get("source_database"), "source_database"),
        target=_database(raw.get("target_database"), "target_database"),
        tables=tuple(_table(t, i) for i, t in enumerate(tables)),
        max_threads=int(options.get("max_threads", 4)),
        output_dir=Path(options.get("output_dir", "sentinel_output")),
        timestamp_precision=_whole(options, "timestamp_precision", 6, 0, 9),
        float_digits=_whole(options, "float_digits", None, 1, 17),
        audit_db_url_env=options.get("audit_db_url_env"),
    )
