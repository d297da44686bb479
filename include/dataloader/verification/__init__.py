"""Load verification: the source table against its bronze Delta table, in the load strategy's terms.

What a strategy promises decides what is compared and what counts as a failure:

- ``full``: the bronze table equals the source.
- ``incremental``, ``check_and_load``: equal up to the committed watermark (both sides ``cursor <=
  watermark``). Rows whose cursor is NULL are left out on both sides (they are loaded once, by the first
  load, and never re-read) and counted apart. Bronze rows the source no longer has at or below the
  watermark (deleted at the source, or changed there since and now past the watermark) are expected
  drift: these strategies never delete. Reported apart, not a failure.
- ``append_only``: every source row up to the watermark is in bronze, by key. Extra bronze rows are not a
  failure; source rows whose values differ from bronze's (updated at the source after they were
  appended: append_only never updates) are reported as drift.
- ``rolling``: equal inside the window (``rolling_column >= window start``, the verification's clock,
  which after a load is never earlier than the load's). Bronze rows the source lacks there are a failure
  when ``rolling_delete_missing`` is set, otherwise drift.
- ``chunked_backfill`` (verified after ``finalize``): equal up to the committed watermark, and the NULL
  cursors too (the first chunk takes them); bronze rows deleted at the source since are drift.

Predicates are sqlglot expressions rendered once per side: the source's dialect, and Spark SQL for the
bronze table (Databricks SQL on Databricks). The comparison itself is DB Sentinel's
(``include.sentinel.pair.compare_tables``). No Airflow import: ``dataloader verify`` and the Airflow
``verify`` task both call :func:`run_verification`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import sqlglot
from sqlglot import exp

from include.control.model import ControlRow
from include.control.repository import ControlRepository
from include.dataloader.dialects import ColumnInfo, ConnectionParams, SourceDialect, dialect_for
from include.dataloader.naming import ColumnNameCollision, delta_column_name, delta_column_names
from include.dataloader.queries import Cursor

log = logging.getLogger(__name__)

Outcome = Literal["failure", "drift", "allowed"]
VERIFY_STRATEGIES = ("full", "incremental", "append_only", "rolling", "check_and_load", "chunked_backfill")
KEY_CAP = 20


class VerificationRefused(ValueError):
    """The verification cannot run (bad input, no committed load); the message names the row and the fix."""


@dataclass(frozen=True)
class Terms:
    """How a strategy's bronze table relates to its source: what each kind of difference means."""

    missing_in_source: Outcome  # rows in bronze the source lacks
    different: Outcome  # rows under one key with different values


def terms_for(strategy: str, row: ControlRow) -> Terms:
    if strategy == "full":
        return Terms(missing_in_source="failure", different="failure")
    if strategy == "append_only":
        return Terms(missing_in_source="allowed", different="drift")
    if strategy == "rolling":
        return Terms(missing_in_source="failure" if row.rolling_delete_missing else "drift", different="failure")
    return Terms(missing_in_source="drift", different="failure")  # incremental, check_and_load, backfill


@dataclass(frozen=True)
class Scope:
    """The rows a verification compares: ``cursor <= upper`` (a watermark) or ``cursor >= lower`` (a
    rolling window), with or without the NULL cursors; no cursor: the whole table."""

    strategy: str
    terms: Terms
    cursor: Cursor | None = None
    upper: str | None = None
    lower: str | None = None
    null_cursors: Literal["excluded", "included"] = "included"

    def predicate(
        self, column: Callable[[str], exp.Expression], literal: Callable[[Cursor, Any], exp.Expression]
    ) -> exp.Expression | None:
        """The scope as a boolean expression; ``column`` and ``literal`` build one side's names and values."""
        if self.cursor is None or (self.upper is None and self.lower is None):
            return None
        col = column(self.cursor.column)
        condition = (
            col <= literal(self.cursor, self.upper)
            if self.upper is not None
            else col >= literal(self.cursor, self.lower)
        )
        if self.null_cursors == "included":
            return exp.or_(exp.paren(condition), column(self.cursor.column).is_(exp.null()))
        return condition

    def describe(self) -> str:
        if self.cursor is None or (self.upper is None and self.lower is None):
            return "the whole table"
        name = self.cursor.column
        text = f"{name} <= {self.upper}" if self.upper is not None else f"{name} >= {self.lower}"
        nulls = (
            "rows with a NULL cursor included"
            if self.null_cursors == "included"
            else ("rows with a NULL cursor left out (counted apart)")
        )
        return f"rows with {text}; {nulls}"


def scope_for(
    row: ControlRow, cursor: Cursor | None, watermark: str | None, *, strategy: str | None = None, now: datetime
) -> Scope:
    """What to compare for ``row`` after a load that committed ``watermark``; ``strategy`` overrides the
    row's (a finished backfill's row already says incremental)."""
    strategy = strategy or row.load_strategy
    if strategy not in VERIFY_STRATEGIES:
        raise VerificationRefused(f"{row.control_key}: load_strategy {strategy!r} has no verification terms")
    terms = terms_for(strategy, row)
    if strategy == "full":
        return Scope(strategy, terms)
    if strategy == "rolling":
        from include.dataloader.strategies.rolling import window_start  # the load's own window rule

        start = window_start(SimpleNamespace(now=now, row=row), cursor)
        return Scope(strategy, terms, cursor, lower=start, null_cursors="excluded")
    if strategy == "chunked_backfill":
        return Scope(strategy, terms, cursor, upper=watermark, null_cursors="included")
    return Scope(strategy, terms, cursor, upper=watermark, null_cursors="excluded")


# -- rendering per side ---------------------------------------------------------------------------------


def source_condition(scope: Scope, dialect: SourceDialect) -> exp.Expression | None:
    def literal(cursor: Cursor, value: Any) -> exp.Expression:
        return dialect.literal(value, cursor.kind, with_time_zone=cursor.with_time_zone)

    return scope.predicate(lambda name: exp.column(name, quoted=True), literal)


def source_predicate(scope: Scope, dialect: SourceDialect) -> str | None:
    condition = source_condition(scope, dialect)
    return condition.sql(dialect=dialect.sqlglot) if condition is not None else None


def bronze_predicate(scope: Scope, sql_dialect: str = "spark") -> str | None:
    """The scope in Spark SQL on the Delta table (``databricks``: as Databricks SQL takes it)."""
    from include.dataloader.strategies.base import spark_literal  # the loader's own cursor literals

    def literal(cursor: Cursor, value: Any) -> exp.Expression:
        return sqlglot.parse_one(spark_literal(cursor, value), read=sql_dialect)  # a CAST stays a CAST

    condition = scope.predicate(lambda name: exp.column(delta_column_name(name), quoted=True), literal)
    return condition.sql(dialect=sql_dialect) if condition is not None else None


# -- the source's columns, through its DB-API connection ------------------------------------------------


def _fetch(conn: Any, query: str) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute(query)
        return [tuple(r) for r in cursor.fetchall()]
    finally:
        cursor.close()


def source_columns(row: ControlRow, dialect: SourceDialect, conn: Any) -> list[ColumnInfo]:
    found = [
        ColumnInfo(r[0], r[1], None if r[2] is None else int(r[2]), None if r[3] is None else int(r[3]))
        for r in _fetch(conn, dialect.columns_query(row.source_schema, row.source_table_name))
    ]
    if not found:
        raise VerificationRefused(
            f"{row.control_key}: source table {row.source_table_name!r} not found (or no columns visible) in "
            f"{dialect.name} database {row.db_config_key!r}; check source_schema and source_table_name"
        )
    return found


def cursor_of(row: ControlRow, dialect: SourceDialect, columns: list[ColumnInfo], strategy: str) -> Cursor | None:
    """The scope's column and how it compares, as the load reads it (``SourceTable.cursor``)."""
    name = row.rolling_column if strategy == "rolling" else row.incremental_column
    if strategy == "full" or not name:
        return None
    info = next((c for c in columns if c.name == name), None)
    if info is None:
        raise VerificationRefused(
            f"{row.control_key}: cursor column {name!r} is not in the source table (columns: "
            f"{', '.join(c.name for c in columns)}); fix incremental_column or rolling_column"
        )
    return Cursor.of_type(name, dialect.spark_type(info), row.incremental_type if strategy != "rolling" else None)


# -- the verification -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bronze:
    """Where the bronze table is read: a DB-API connection speaking Spark SQL, and the table's name there.

    ``sql_dialect``: ``spark`` (the local engine, Sail) or ``databricks`` (Databricks SQL)."""

    connect: Callable[[], Any]
    schema: str | None
    table: str
    sql_dialect: str = "spark"


@dataclass
class Verification:
    control_key: str
    run_id: str
    strategy: str
    scope: str
    counts: dict[str, int]
    failures: int
    drift: dict[str, int]
    keys: dict[str, list] = field(default_factory=dict)
    null_cursor_rows: int | None = None
    report: str | None = None
    sync_sql: str | None = None

    @property
    def status(self) -> str:
        return "mismatch" if self.failures else "equal"

    def as_dict(self) -> dict[str, Any]:
        """Small (counts and capped key lists): for XCom and historical_metadata."""
        return {
            "control_key": self.control_key,
            "run_id": self.run_id,
            "status": self.status,
            "strategy": self.strategy,
            "scope": self.scope,
            **self.counts,
            "failures": self.failures,
            "expected_drift": self.drift,
            "null_cursor_rows_left_out": self.null_cursor_rows,
            "keys": self.keys,
            "report": self.report,
            "sync_sql": self.sync_sql,
        }

    def message(self) -> str:
        c = self.counts
        parts = [
            f"{self.control_key}: bronze {self.status} with its source ({self.strategy}, {self.scope}): "
            f"{c['source_rows']} source rows, {c['target_rows']} bronze rows, {c['matching']} matching"
        ]
        parts.append(
            f"{self.failures} failing: {c['missing_in_target']} missing in bronze, "
            f"{c['missing_in_source']} in bronze only, {c['different']} different"
            if self.failures
            else "no failing difference"
        )
        if any(self.drift.values()):
            parts.append(
                "expected drift: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.drift.items() if n)
            )
        if c.get("in_flight"):
            parts.append(f"{c['in_flight']} rows changed at the source while compared (not counted)")
        if self.null_cursor_rows:
            parts.append(f"{self.null_cursor_rows} source rows with a NULL cursor not compared")
        if self.report:
            parts.append(f"report: {self.report}")
        return "; ".join(parts)


DRIFT_NAMES = {
    "missing_in_source": "deleted_or_changed_at_source",
    "different": "changed_at_source_since_appended",
}


def judge(terms: Terms, result: Mapping[str, Any]) -> tuple[int, dict[str, int], dict[str, list]]:
    """Failures, drift counts and the failing keys (capped) of a comparison, by the strategy's terms."""
    failures = int(result["missing_in_target"])
    keys = {"missing_in_target": list(result["keys"]["missing_in_target"])}
    drift: dict[str, int] = {}
    for kind, outcome in (("missing_in_source", terms.missing_in_source), ("different", terms.different)):
        if outcome == "failure":
            failures += int(result[kind])
            keys[kind] = list(result["keys"][kind])
        elif outcome == "drift":
            drift[DRIFT_NAMES[kind]] = int(result[kind])
            keys[DRIFT_NAMES[kind]] = list(result["keys"][kind])
        else:
            drift["in_bronze_only_allowed"] = int(result[kind])
    return failures, drift, keys


def verify(
    row: ControlRow,
    db_type: str,
    params: ConnectionParams,
    bronze: Bronze,
    *,
    run_id: str,
    watermark: str | None,
    out_dir: Path,
    strategy: str | None = None,
    now: datetime | None = None,
    key_cap: int = KEY_CAP,
    in_process: bool | None = None,
    source_streams: int | None = None,
) -> Verification:
    """Compare ``row``'s source with its bronze table after a load that committed ``watermark``.

    ``params``: the source's connection, resolved as the load resolves it (Airflow: its connection;
    a shell: the dbconfig's secrets). ``in_process``: hash both sides here (``verification.arrow``); None: where
    it applies; False: inside both engines (the sentinel's checksums). ``source_streams``: in process, the
    source read in that many key ranges at once (None: ``arrow.SOURCE_STREAMS``; 1: one read).
    """
    from include.dataloader.verification import arrow
    from include.sentinel.pair import Side, compare_tables

    strategy = strategy or row.load_strategy
    if not row.primary_key_columns:
        raise VerificationRefused(
            f"{row.control_key}: verify needs primary_key_columns (rows are compared by key); set them"
        )
    dialect = dialect_for(db_type)
    with _closing(dialect.connect(params)) as conn:
        columns = source_columns(row, dialect, conn)
        cursor = cursor_of(row, dialect, columns, strategy)
        scope = scope_for(row, cursor, watermark, strategy=strategy, now=now or datetime.now(UTC))
        null_rows = _null_cursor_rows(conn, dialect, row, scope)
    try:  # the loader lands each column under its Delta-valid name: the comparison reads bronze by those
        names = delta_column_names([c.name for c in columns], table=row.control_key)
    except ColumnNameCollision as exc:
        raise VerificationRefused(str(exc)) from None
    source_where, bronze_where = source_predicate(scope, dialect), bronze_predicate(scope, bronze.sql_dialect)
    log.info(
        "%s: verifying %s; source WHERE %s; bronze WHERE %s",
        row.control_key,
        scope.describe(),
        source_where,
        bronze_where,
    )
    shutil.rmtree(out_dir, ignore_errors=True)  # a re-run's report replaces the run's earlier one
    compare = None
    if in_process is None:
        in_process = arrow.applies(db_type, bronze)
    if in_process:  # both sides hashed here, not inside the engines
        condition = source_condition(scope, dialect)
        streams = arrow.SOURCE_STREAMS if source_streams is None else source_streams
        compare = arrow.in_process_compare(
            row, dialect, params, columns, scope, condition, bronze, source_streams=streams
        )
    result = compare_tables(
        Side(db_type, lambda: dialect.connect(params), row.source_schema, row.source_table_name, source_where),
        Side("spark", bronze.connect, bronze.schema, bronze.table, bronze_where),
        key=list(row.primary_key_columns),
        columns=[c.name for c in columns if c.name not in row.primary_key_columns],
        out_dir=out_dir,
        names={source: delta for source, delta in names.items() if source != delta},
        key_cap=key_cap,
        compare=compare,
    )
    failures, drift, keys = judge(scope.terms, result)
    counts = {
        k: int(result.get(k) or 0)
        for k in (
            "source_rows",
            "target_rows",
            "matching",
            "missing_in_target",
            "missing_in_source",
            "different",
            "in_flight",  # changed again while compared: neither equal nor counted as a difference
        )
    }
    return Verification(
        control_key=row.control_key,
        run_id=run_id,
        strategy=strategy,
        scope=scope.describe(),
        counts=counts,
        failures=failures,
        drift=drift,
        keys={k: v[:key_cap] for k, v in keys.items()},
        null_cursor_rows=null_rows,
        report=str(result["report"]) if result.get("report") else None,
        sync_sql=str(result["sync_sql"]) if result.get("sync_sql") else None,
    )


def _null_cursor_rows(conn: Any, dialect: SourceDialect, row: ControlRow, scope: Scope) -> int | None:
    """Source rows a scope leaves out for their NULL cursor (None when it leaves none out)."""
    if scope.cursor is None or scope.null_cursors == "included" or (scope.upper is None and scope.lower is None):
        return None
    query = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(exp.table_(row.source_table_name, db=row.source_schema, quoted=True))
        .where(exp.column(scope.cursor.column, quoted=True).is_(exp.null()))
    )
    return int(_fetch(conn, query.sql(dialect=dialect.sqlglot))[0][0])


class _closing:
    def __init__(self, conn: Any):
        self.conn = conn

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()


# -- with the control database --------------------------------------------------------------------------


def default_artifacts_root(warehouse_root: Path) -> Path:
    """``$DATALOADER_ARTIFACTS_ROOT``; else ``artifacts`` beside the local warehouse (under Airflow:
    ``$AIRFLOW_HOME/dataloader/artifacts``). The verify task and ``dataloader verify`` share it."""
    explicit = os.environ.get("DATALOADER_ARTIFACTS_ROOT")
    return Path(explicit) if explicit else Path(warehouse_root).parent / "artifacts"


def out_dir_for(root: Path, control_key: str, run_id: str) -> Path:
    """One folder per verified run: a re-run overwrites its own report."""
    return Path(root) / "verify" / control_key / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def run_verification(
    repo: ControlRepository,
    control_key: str,
    *,
    params: ConnectionParams | Callable[[Mapping[str, Any]], ConnectionParams],
    bronze: Bronze | Callable[[ControlRow], Bronze],
    artifacts_root: Path,
    run_id: str | None = None,
    strategy: str | None = None,
    now: datetime | None = None,
) -> Verification:
    """Verify the committed state of ``control_key`` and record the result on its run's historical row.

    ``run_id``: the run whose load is verified (an Airflow task: its own run); None: the row's latest
    Succeeded run (a shell). ``params`` and ``bronze`` may be functions of the dbconfig and the row.
    """
    from include.dataloader.job import control_row

    current = repo.require(control_key)
    row = control_row(current)
    if run_id is None:
        last = repo.last_succeeded_run(control_key)
        if last is None:
            raise VerificationRefused(
                f"{control_key}: no Succeeded load to verify; load it first (`dataloader run {control_key}`)"
            )
        run_id = last["run_id"]
    dbconfig = repo.get_dbconfig(row.db_config_key)
    resolved = params(dbconfig) if callable(params) else params
    target = bronze(row) if callable(bronze) else bronze
    verification = verify(
        row,
        current["db_type"],
        resolved,
        target,
        run_id=run_id,
        watermark=current["incremental_value"],
        out_dir=out_dir_for(artifacts_root, control_key, run_id),
        strategy=strategy,
        now=now,
    )
    if repo.record_verification(control_key, run_id, verification.status, verification.as_dict()) is None:
        log.warning("%s: run %s has no historical_metadata row; the verification was not recorded", control_key, run_id)
    return verification


# -- the bronze table on the local engine ---------------------------------------------------------------


def local_bronze(row: ControlRow, warehouse_root: Path, spark: Any = None) -> Bronze:
    """The bronze table in the local warehouse, read through Sail (``delta.`<path>```)."""
    from include.sentinel.spark import local_connect

    # LocalWarehouse's layout: <root>/<catalog>/<schema>/<table>
    path = Path(warehouse_root).resolve() / row.destination_catalog / row.destination_schema
    return Bronze(local_connect(spark), "delta", str(path / row.destination_table_name), "spark")
