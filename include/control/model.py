"""The control row: what a data engineer configures for one source table, and its validation.

Validation reports every problem of a row at once, each naming the field and the fix, so that a
YAML import or a CLI call can be corrected in one pass.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from croniter import croniter

LoadStrategy = Literal["full", "incremental", "append_only", "rolling", "check_and_load", "chunked_backfill"]
CursorType = Literal["timestamp", "date", "integer"]
Status = Literal["Queued", "In Progress", "Succeeded", "Failed"]
DbType = Literal["sqlserver", "oracle", "postgresql", "snowflake", "clickhouse"]
ExecutionTarget = Literal["local", "databricks"]

LOAD_STRATEGIES: tuple[str, ...] = get_args(LoadStrategy)
CURSOR_TYPES: tuple[str, ...] = get_args(CursorType)
DB_TYPES: tuple[str, ...] = get_args(DbType)
EXECUTION_TARGETS: tuple[str, ...] = get_args(ExecutionTarget)

# Mirrors the CHECK constraints of migration 0001; checked here first for a readable error.
NEEDS_CURSOR = frozenset({"incremental", "append_only", "check_and_load", "chunked_backfill"})
NEEDS_PRIMARY_KEY = frozenset({"incremental", "rolling", "check_and_load", "chunked_backfill"})

CONTROL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")  # also a valid Airflow dag_id
UC_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Source names are quoted per dialect, so most characters are fine; these never belong in a table or column
# name and mostly come from SQL pasted into a field: quotes, parentheses, statement ends, comments.
SQL_IN_NAME_RE = re.compile(r"""["'`;()\\]|--|/\*|\*/""")
MAX_INT = 2_147_483_647  # the integer columns of table_control
SOURCE_NAME_FIELDS = ("source_schema", "source_table_name", "incremental_column", "rolling_column")


@dataclass(frozen=True)
class FieldProblem:
    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}; {self.fix}"


class InvalidControlRow(ValueError):
    """A control row that cannot be stored; carries every problem found."""

    def __init__(self, control_key: str | None, problems: Iterable[FieldProblem]):
        self.control_key = control_key
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"table_control row {control_key or '<no control_key>'!r} is invalid:\n{lines}")


@dataclass(frozen=True)
class ControlRow:
    """The configurable columns of a ``table_control`` row (status columns belong to the repository)."""

    control_key: str
    db_config_key: str
    source_table_name: str
    destination_schema: str
    destination_table_name: str
    load_strategy: LoadStrategy
    cron: str
    source_schema: str | None = None
    destination_catalog: str = "bronze"
    is_active: bool = True
    incremental_column: str | None = None
    incremental_type: CursorType | None = None
    incremental_value: str | None = None
    primary_key_columns: tuple[str, ...] = field(default_factory=tuple)
    rolling_column: str | None = None
    rolling_days: int | None = None
    chunk_size: int | None = None
    chunk_interval_days: int | None = None
    lookback_minutes: int | None = None
    rolling_delete_missing: bool = False
    sla_minutes: int | None = None
    alert_target: str | None = None
    execution_target: ExecutionTarget | None = None  # None: the environment's default
    max_running_minutes: int | None = None  # None: the long-running monitor's default
    verify: bool = False  # compare the source with the bronze table after each load

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ControlRow:
        """Validate a mapping (a YAML entry, CLI flags, a database row) and build the row."""
        return cls(**_validated(data))

    def as_columns(self) -> dict[str, Any]:
        values = asdict(self)
        values["primary_key_columns"] = list(self.primary_key_columns)
        return values

    @property
    def destination(self) -> str:
        return f"{self.destination_catalog}.{self.destination_schema}.{self.destination_table_name}"


CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ControlRow))
REQUIRED_FIELDS = (
    "control_key",
    "db_config_key",
    "source_table_name",
    "destination_schema",
    "destination_table_name",
    "load_strategy",
    "cron",
)
_INT_FIELDS = (
    "rolling_days",
    "chunk_size",
    "chunk_interval_days",
    "lookback_minutes",
    "sla_minutes",
    "max_running_minutes",
)
_TEXT_FIELDS = (
    "source_schema",
    "incremental_column",
    "incremental_value",
    "rolling_column",
    "alert_target",
)


def _validated(data: Mapping[str, Any]) -> dict[str, Any]:
    key = data.get("control_key")
    problems: list[FieldProblem] = []
    add = problems.append
    values = {name: data[name] for name in CONFIG_FIELDS if name in data}

    for name in sorted(set(data) - set(CONFIG_FIELDS)):
        add(FieldProblem(name, "is not a control-table field", f"remove it or use one of: {', '.join(CONFIG_FIELDS)}"))
    for name in REQUIRED_FIELDS:
        if values.get(name) in (None, ""):
            add(FieldProblem(name, "is missing", f"set {name}"))
    if problems and any(p.problem == "is missing" for p in problems):
        raise InvalidControlRow(key, problems)

    if not CONTROL_KEY_RE.match(str(key)):
        add(FieldProblem("control_key", f"{key!r} is not a valid key", "use letters, digits, '_', '.' or '-'"))
    for name in ("destination_catalog", "destination_schema", "destination_table_name"):
        if name in values and not UC_NAME_RE.match(str(values[name])):
            add(
                FieldProblem(
                    name,
                    f"{values[name]!r} is not a Unity Catalog name",
                    "use letters, digits and underscores",
                )
            )

    strategy = values["load_strategy"]
    if strategy not in LOAD_STRATEGIES:
        add(
            FieldProblem(
                "load_strategy",
                f"{strategy!r} is not a load strategy",
                f"set one of: {', '.join(LOAD_STRATEGIES)}",
            )
        )
    if not croniter.is_valid(str(values["cron"])):
        add(
            FieldProblem(
                "cron",
                f"{values['cron']!r} is not a valid cron expression",
                "use five fields such as '0 * * * *' or a preset such as '@daily'",
            )
        )

    for name in _TEXT_FIELDS:
        if values.get(name) is not None:
            values[name] = _text(values[name])
    for name in _INT_FIELDS:
        if values.get(name) is not None:
            number = _positive_int(values[name])
            if number is None:
                add(FieldProblem(name, f"{values[name]!r} is not a positive whole number", f"set {name} to e.g. 30"))
            elif number > MAX_INT:
                add(FieldProblem(name, f"{number} is too large", f"set a whole number from 1 to {MAX_INT}"))
            else:
                values[name] = number
    target = values.get("execution_target")
    if target is not None and target not in EXECUTION_TARGETS:
        add(
            FieldProblem(
                "execution_target",
                f"{target!r} is not an execution target",
                f"set one of: {', '.join(EXECUTION_TARGETS)}, or leave it empty for the environment's default",
            )
        )
    for name in ("is_active", "rolling_delete_missing", "verify"):
        if name in values and not isinstance(values[name], bool):
            add(FieldProblem(name, f"{values[name]!r} is not true or false", "set true or false"))

    pks = values.get("primary_key_columns") or ()
    if isinstance(pks, str):
        pks = [c.strip() for c in pks.split(",")]
    if not isinstance(pks, list | tuple) or not all(isinstance(c, str) for c in pks):
        add(FieldProblem("primary_key_columns", f"{pks!r} is not a list of column names", "set e.g. [order_id]"))
        pks = ()
    values["primary_key_columns"] = tuple(c for c in pks if c.strip())
    for name in SOURCE_NAME_FIELDS:
        if values.get(name) is not None and (why := name_problem(values[name])):
            add(FieldProblem(name, f"{values[name]!r} {why}", "give the source's plain name, without SQL"))
    for column in values["primary_key_columns"]:
        if why := name_problem(column):
            add(FieldProblem("primary_key_columns", f"{column!r} {why}", "give the source's plain column names"))

    cursor, cursor_type = values.get("incremental_column"), values.get("incremental_type")
    if strategy in NEEDS_CURSOR and not cursor:
        add(
            FieldProblem(
                "incremental_column",
                f"is required by load_strategy {strategy!r}",
                "set the cursor column (a modified timestamp or an increasing id)",
            )
        )
    if cursor and cursor_type not in CURSOR_TYPES:
        add(
            FieldProblem(
                "incremental_type",
                f"{cursor_type!r} is not a cursor type" if cursor_type else "is required with incremental_column",
                f"set one of: {', '.join(CURSOR_TYPES)}",
            )
        )
    if cursor_type and not cursor:
        add(FieldProblem("incremental_column", "is missing but incremental_type is set", "set both or neither"))
    if strategy in NEEDS_PRIMARY_KEY and not values["primary_key_columns"]:
        add(
            FieldProblem(
                "primary_key_columns",
                f"is required by load_strategy {strategy!r} (rows are merged on it)",
                "set the source table's key columns, e.g. [order_id]",
            )
        )
    if values.get("verify") is True and not values["primary_key_columns"]:
        add(
            FieldProblem(
                "verify",
                "needs primary_key_columns (the verification compares source and bronze rows by key)",
                "set primary_key_columns to the source table's key columns, or set verify to false",
            )
        )
    if strategy == "rolling":
        if not values.get("rolling_column"):
            add(
                FieldProblem("rolling_column", "is required by load_strategy 'rolling'", "set the window's date column")
            )
        if not values.get("rolling_days"):
            add(
                FieldProblem("rolling_days", "is required by load_strategy 'rolling'", "set the window in days, e.g. 7")
            )

    if values.get("lookback_minutes") and cursor_type == "integer":
        add(
            FieldProblem(
                "lookback_minutes",
                "applies to timestamp and date cursors only",
                "remove it, or use a timestamp cursor for late-arriving rows",
            )
        )

    watermark = values.get("incremental_value")
    if watermark is not None and cursor_type in CURSOR_TYPES and not _parses_as(watermark, cursor_type):
        add(
            FieldProblem(
                "incremental_value",
                f"{watermark!r} is not a {cursor_type}",
                {
                    "integer": "set a whole number",
                    "date": "set an ISO date such as 2024-01-15",
                    "timestamp": "set an ISO timestamp such as 2024-01-15 10:30:00.123456",
                }[cursor_type],
            )
        )

    if problems:
        raise InvalidControlRow(key, problems)
    return values


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a source table or column name (quotes, ';', comments, control characters)."""
    if SQL_IN_NAME_RE.search(name):
        return "holds a quote, a parenthesis, ';', a backslash or a comment marker"
    if any(unicodedata.category(c).startswith("C") for c in name):
        return "holds an invisible or control character"
    return None


def dbconfig_problems(db_config_key: Any, db_type: Any, value: Any) -> list[FieldProblem]:
    """What is wrong with a ``table_control_dbconfig`` row: its key, its db_type, its secret names."""
    problems = []
    if not isinstance(db_config_key, str) or not CONTROL_KEY_RE.match(db_config_key):
        problems.append(
            FieldProblem(
                "db_config_key", f"{db_config_key!r} is not a valid key", "use letters, digits, '_', '.' or '-'"
            )
        )
    if db_type not in DB_TYPES:
        problems.append(FieldProblem("db_type", f"{db_type!r} is not supported", f"set one of: {', '.join(DB_TYPES)}"))
    if not isinstance(value, Mapping):
        problems.append(
            FieldProblem(
                "db_config_value (--value)",
                f"{value!r} is not a mapping",
                'give an object of secret names, e.g. {"host": "kv-host", "user": "kv-user"}',
            )
        )
    else:
        for name, secret in value.items():
            if not isinstance(secret, str) or not secret:
                problems.append(
                    FieldProblem(
                        f"db_config_value.{name}",
                        f"{secret!r} is not a secret name",
                        "give the name of the secret that holds it (text), never the value itself",
                    )
                )
    return problems


class InvalidDbConfig(ValueError):
    """A dbconfig that cannot be stored; names every problem."""

    def __init__(self, db_config_key: Any, problems: Iterable[FieldProblem]):
        self.problems = tuple(problems)
        super().__init__(
            f"table_control_dbconfig {db_config_key!r} is invalid:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _parses_as(value: str, cursor_type: str) -> bool:
    try:
        if cursor_type == "integer":
            int(value)
        elif cursor_type == "date":
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# -- typed values from a shell (CLI flags and `--set`) ------------------------------------------------

FIELD_HELP: dict[str, str] = {
    "control_key": "unique key of the row, also the loader DAG's id (letters, digits, '_', '.', '-')",
    "db_config_key": "the source database: a table_control_dbconfig key (see `dataloader dbconfig list`)",
    "source_table_name": "the table to read at the source",
    "destination_schema": "Unity Catalog schema of the target Delta table",
    "destination_table_name": "name of the target Delta table",
    "load_strategy": "how a run loads the table (what each needs: below)",
    "cron": "when to load: five fields such as '*/15 * * * *', or a preset such as @daily",
    "source_schema": "schema of the source table (default: the connection's)",
    "destination_catalog": "Unity Catalog catalog of the target (default: bronze)",
    "is_active": "true: loaded on its cron; false: switched off",
    "incremental_column": "the cursor: a modified timestamp or an increasing id",
    "incremental_type": "type of the cursor",
    "incremental_value": "the starting watermark (largest cursor value already loaded)",
    "primary_key_columns": "merge key: comma-separated (order_id,line_no) or a JSON list",
    "rolling_column": "rolling: the date column of the window",
    "rolling_days": "rolling: the window in days",
    "chunk_size": "chunked_backfill with an integer cursor: ids per chunk (default 100000)",
    "chunk_interval_days": "chunked_backfill with a timestamp or date cursor: days per chunk (default 30)",
    "lookback_minutes": "re-read this many minutes below the watermark, for rows that arrive late",
    "rolling_delete_missing": "rolling: also delete target rows inside the window that the source no longer has",
    "sla_minutes": "the run's deadline in minutes; missing it pages alert_target",
    "alert_target": "who is paged: an https:// webhook, conn:<conn_id> or mailto:<address>",
    "execution_target": "where the load runs (default: $DATALOADER_EXECUTION_TARGET)",
    "max_running_minutes": "the long-running monitor's limit for this row (default 180)",
    "verify": "true: after each load, compare the source with the bronze table in the strategy's terms "
    "(needs primary_key_columns); a difference fails the run's verify task and pages alert_target",
}

FieldKind = Literal["text", "choice", "bool", "int", "list"]
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class InvalidFieldValue(ValueError):
    """A value typed on a shell that is not of its field's type; carries the field and the fix."""

    def __init__(self, problem: FieldProblem):
        self.problem = problem
        super().__init__(str(problem))


def field_kind(name: str) -> tuple[FieldKind, tuple[str, ...]]:
    """The kind of a configurable field, read from ControlRow's annotations, and its choices."""
    hint = get_type_hints(ControlRow)[name]
    is_optional = get_origin(hint) in (Union, UnionType)
    base = next(a for a in get_args(hint) if a is not type(None)) if is_optional else hint
    if get_origin(base) is Literal:
        return "choice", get_args(base)
    if base is bool:
        return "bool", ()
    if base is int:
        return "int", ()
    if get_origin(base) is tuple:
        return "list", ()
    return "text", ()


def parse_field(name: str, text: str | None) -> Any:
    """A value as typed on a shell, converted to the field's type (never parsed as YAML).

    Empty text clears an optional field; lists are comma-separated or a JSON list; booleans take
    true/false, yes/no, on/off, 1/0. Choices and ranges are left to the row's validation.
    """
    if name not in CONFIG_FIELDS:
        raise InvalidFieldValue(
            FieldProblem(name, "is not a control-table field", f"use one of: {', '.join(CONFIG_FIELDS)}")
        )
    kind, _ = field_kind(name)
    if text is None or text.strip() == "":
        return () if kind == "list" else None
    text = text.strip()
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise InvalidFieldValue(FieldProblem(name, f"{text!r} is not true or false", "set true or false"))
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise InvalidFieldValue(
                FieldProblem(name, f"{text!r} is not a whole number", f"set {name} to e.g. 30")
            ) from None
    if kind == "list":
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidFieldValue(
                    FieldProblem(name, f"{text!r} is not a JSON list ({exc.msg})", 'set e.g. ["order_id", "line_no"]')
                ) from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise InvalidFieldValue(FieldProblem(name, f"{text!r} is not a list of names", 'set e.g. ["order_id"]'))
            return tuple(items)
        return tuple(c.strip() for c in text.split(",") if c.strip())
    return text


def parse_fields(control_key: str | None, raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Shell or form values converted to their fields' types (``parse_field``); every problem at once."""
    values, problems = {}, []
    for name, text in raw.items():
        try:
            values[name] = parse_field(name, text)
        except InvalidFieldValue as exc:
            problems.append(exc.problem)
    if problems:
        raise InvalidControlRow(control_key, problems)
    return values


def strategy_requirements() -> dict[str, list[str]]:
    """The fields each load strategy needs besides the required ones (the same rules as the validation)."""
    needs: dict[str, list[str]] = {}
    for strategy in LOAD_STRATEGIES:
        fields_needed = []
        if strategy in NEEDS_CURSOR:
            fields_needed += ["incremental_column", "incremental_type"]
        if strategy in NEEDS_PRIMARY_KEY:
            fields_needed.append("primary_key_columns")
        if strategy == "rolling":
            fields_needed += ["rolling_column", "rolling_days"]
        needs[strategy] = fields_needed
    return needs
