"""The comparison config (the seeds' YAML), validated with errors that name the table and the field."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp
from sqlglot.tokens import TokenType

from include.control.model import name_problem

DB_TYPES = ("oracle", "postgresql", "sqlserver", "snowflake", "clickhouse", "spark")
DEFAULT_PORTS = {"oracle": 1521, "postgresql": 5432, "sqlserver": 1433, "clickhouse": 8123}
SQLGLOT_DIALECTS = {
    "oracle": "oracle",
    "postgresql": "postgres",
    "sqlserver": "tsql",
    "snowflake": "snowflake",
    "clickhouse": "clickhouse",
    "spark": "spark",
}
MAX_CHUNK_SIZE = 100_000_000  # a chunk is what a resume redoes: above this a resume loses its point


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
    # source column name -> the target's name for it, where they differ (absent: the same name); the
    # comparison's results and reports keep the source's names, the target's queries use its own
    target_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table_name}" if self.schema else self.table_name

    def target_name(self, name: str) -> str:
        return self.target_names.get(name, name)


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
        # worded so that the redaction of "password: <value>" in messages leaves it readable
        raise ConfigError(
            f"{name}.password is in the file, where no password belongs: remove it and set password_env to the "
            "name of a variable that holds it"
        )
    db_type = raw.get("db_type", "oracle")
    if db_type not in DB_TYPES:
        raise ConfigError(f"{name}.db_type: {db_type!r} is not supported; use one of: {', '.join(DB_TYPES)}")
    known = {"db_type", "host", "port", "database", "username", "password_env", "url_env", "conn_id", "extra"}
    if unknown := set(raw) - known:
        raise ConfigError(f"{name}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    if not isinstance(raw.get("extra", {}), dict):
        raise ConfigError(f"{name}.extra: expected a mapping of driver options")
    return Database(**{**raw, "db_type": db_type})


def _names(field: str, value: Any, *, one: bool = False) -> tuple[str, ...]:
    """A column (or table) name or a list of them, each a plain name (no quotes, ';', comments).

    :param field: how the message names the field, e.g. ``table T: primary_key``."""
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list | tuple)
        or not all(isinstance(i, str) and i for i in items)
        or (one and len(items) != 1)
    ):
        what = "a name" if one else "a column name or a list of column names"
        raise ConfigError(f"{field} must be {what}, got {value!r}")
    for item in items:
        if why := name_problem(item):
            raise ConfigError(f"{field} {item!r} {why}; give the plain name, without SQL")
    return tuple(items)


PERCENT_FORMATTING = {"clickhouse": "startsWith(), endsWith() or position()", "snowflake": "STARTSWITH() or CONTAINS()"}


def _where(label: str, where: Any, db_type: str, *, field: str = "where") -> str | None:
    """The filter as given, once it is one boolean condition of the source's dialect (it is put into every
    query as it is: no second statement, no comment that would cut the query)."""
    if where is None:
        return None
    fix = "give one condition such as: status = 'open' AND id > 100"
    if not isinstance(where, str) or not where.strip():
        raise ConfigError(f"table {label}: {field} must be a condition (text), got {where!r}; {fix}")
    try:
        dialect = SQLGLOT_DIALECTS.get(db_type)
        tokens = sqlglot.tokenize(where, read=dialect)
        statements = [s for s in sqlglot.parse(where, read=dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:  # its message underlines the token with terminal escapes
        first = exc.errors[0] if exc.errors else {}
        raise ConfigError(
            f"table {label}: {field} does not parse ({first.get('description', 'invalid SQL')} at column "
            f"{first.get('col', '?')}); {fix}"
        ) from None
    except sqlglot.errors.SqlglotError as exc:
        raise ConfigError(f"table {label}: {field} does not parse ({' '.join(str(exc).split())}); {fix}") from None
    if any(t.comments for t in tokens) or any(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise ConfigError(f"table {label}: {field} holds a comment or ';'; {fix}")
    node = statements[0] if len(statements) == 1 else None
    while isinstance(node, exp.Paren):
        node = node.this
    if not isinstance(node, exp.Predicate | exp.Connector | exp.Not | exp.Boolean):
        raise ConfigError(f"table {label}: {field} {where!r} is not a boolean condition; {fix}")
    if "%" in where and db_type in PERCENT_FORMATTING:
        # their drivers format a query with Python's % only when it has binds: a % could not be written so
        # that it reaches the database as itself in both kinds of query
        raise ConfigError(
            f"table {label}: {field} holds a '%', which the {db_type} driver would misread; "
            f"use {PERCENT_FORMATTING[db_type]} instead of LIKE"
        )
    return where


def _text(label: str, field: str, value: Any) -> str | None:
    """A target name as given (the dialect quotes it): text, or absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"table {label}: {field} must be a name (text), got {value!r}; give it or leave it out")
    return value


def _table(raw: Any, index: int, db_type: str, target_db_type: str) -> TableSpec:
    if not isinstance(raw, dict) or not raw.get("table_name"):
        raise ConfigError(f"tables[{index}]: table_name is required")
    [label] = _names(f"tables[{index}].table_name", raw["table_name"], one=True)
    pk = raw.get("primary_key")
    if not pk:
        raise ConfigError(f"table {label}: primary_key is required (a column or a list of columns)")
    pk = _names(f"table {label}: primary_key", pk)
    chunk = raw.get("chunk_size", 10_000)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or not 0 < chunk <= MAX_CHUNK_SIZE:
        raise ConfigError(
            f"table {label}: chunk_size must be a whole number from 1 to {MAX_CHUNK_SIZE:,}, got {chunk!r}"
        )
    known = {"table_name", "schema", "primary_key", "chunk_size", "columns", "exclude_columns", "where"}
    known |= {"target_schema", "target_table", "target_where", "target_names"}
    if unknown := set(raw) - known:
        raise ConfigError(f"table {label}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    schema = raw.get("schema")
    return TableSpec(
        table_name=label,
        schema=_names(f"table {label}: schema", schema, one=True)[0] if schema is not None else None,
        primary_key=pk,
        chunk_size=chunk,
        columns=_names(f"table {label}: columns", raw["columns"]) if raw.get("columns") is not None else None,
        exclude_columns=_names(f"table {label}: exclude_columns", raw.get("exclude_columns") or []),
        where=_where(label, raw.get("where"), db_type),
        target_schema=_text(label, "target_schema", raw.get("target_schema")),
        target_table=_text(label, "target_table", raw.get("target_table")),
        target_where=_where(label, raw.get("target_where"), target_db_type, field="target_where"),
        target_names=_target_names(label, raw.get("target_names")),
    )


def _target_names(label: str, raw: Any) -> dict[str, str]:
    """``{source column: target column}`` for the columns the target names otherwise."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"table {label}: target_names must map source column names to the target's, e.g. "
            f"{{'Order Date': 'Order_Date'}}, got {raw!r}"
        )
    for source, target in raw.items():
        _names(f"table {label}: target_names", source, one=True)
        _names(f"table {label}: target_names[{source!r}]", target, one=True)
    if len(set(raw.values())) < len(raw):
        raise ConfigError(f"table {label}: target_names maps two source columns to one target column: {raw!r}")
    return dict(raw)


def _whole(options: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int | None:
    value = options.get(name, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
        raise ConfigError(f"options.{name}: expected a whole number from {low} to {high}, got {value!r}")
    return value


def load_config(path: Path) -> CompareConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"sentinel config {path}: not a text file; give the YAML comparison config") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(raw)


def parse_config(raw: Any) -> CompareConfig:
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping of source_database, target_database, tables and options")
    tables = raw.get("tables")
    if not tables:
        raise ConfigError("tables: list at least one table to compare")
    if not isinstance(tables, list):
        raise ConfigError(f"tables: expected a list of tables (each with table_name and primary_key), got {tables!r}")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"options: expected a mapping, got {options!r}")
    known = {"max_threads", "output_dir", "timestamp_precision", "float_digits", "audit_db_url_env"}
    if unknown := set(options) - known:
        raise ConfigError(f"options: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    output_dir = options.get("output_dir", "sentinel_output")
    if not isinstance(output_dir, str) or not output_dir:
        raise ConfigError(f"options.output_dir: expected a folder path (text), got {output_dir!r}")
    source = _database(raw.get("source_database"), "source_database")
    target = _database(raw.get("target_database"), "target_database")
    return CompareConfig(
        source=source,
        target=target,
        tables=tuple(_table(t, i, source.db_type, target.db_type) for i, t in enumerate(tables)),
        max_threads=_whole(options, "max_threads", 4, 1, 64),
        output_dir=Path(output_dir),
        timestamp_precision=_whole(options, "timestamp_precision", 6, 0, 9),
        float_digits=_whole(options, "float_digits", None, 1, 17),
        audit_db_url_env=options.get("audit_db_url_env"),
    )
