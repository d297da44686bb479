"""Sync SQL in the target's dialect: INSERT the rows missing in the target, UPDATE only the differing
columns, DELETE the rows missing in the source (commented out unless deletes are allowed: deleting on a
DR database is a decision), a COMMIT every ``commit_every`` statements (in the dialect's terms: SQL Server
opens each batch with BEGIN TRANSACTION; ClickHouse has no transactions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.sentinel.compare import Schema, TableComparator, TableComparison
from include.sentinel.dialects.base import Key
from include.sentinel.verify import Verified


@dataclass(frozen=True)
class SyncPlan:
    """What to change on the target: full source rows to insert, changed columns to update, keys to delete.
    Columns are named as the target has them: the statements run there."""

    table: str  # the quoted table reference
    label: str
    primary_key: Sequence[str]
    columns: Sequence[str]
    inserts: Mapping[Key, Sequence[Any]]  # key -> values of ``columns``
    updates: Mapping[Key, Mapping[str, Any]]  # key -> {column: new value}
    deletes: Sequence[Key]
    in_flight: int = 0


def render(
    plan: SyncPlan,
    dialect,
    *,
    session_id: str,
    generated_at: datetime,
    allow_deletes: bool = False,
    commit_every: int = 1000,
) -> str:
    if note := getattr(dialect, "reload_note", None):
        return reload_note(plan, dialect, note, session_id=session_id, generated_at=generated_at)
    quote, literal = dialect.ident, dialect.literal

    def where(key: Key) -> str:
        return " AND ".join(f"{quote(k)} = {literal(v)}" for k, v in zip(plan.primary_key, key, strict=True))

    names = ", ".join(quote(n) for n in (*plan.primary_key, *plan.columns))
    statements = [
        f"INSERT INTO {plan.table} ({names}) VALUES ({', '.join(literal(v) for v in (*key, *values))});"
        for key, values in plan.inserts.items()
    ]
    for key, changes in plan.updates.items():
        sets = ", ".join(f"{quote(c)} = {literal(v)}" for c, v in changes.items())
        statements.append(dialect.update_statement(plan.table, sets, where(key)))
    prefix = "" if allow_deletes else "-- "
    statements += [prefix + dialect.delete_statement(plan.table, where(key)) for key in plan.deletes]

    header = [
        f"-- DB Sentinel sync SQL for {plan.label} ({dialect.name})",
        f"-- session {session_id}, generated {generated_at.isoformat(timespec='seconds')}",
        f"-- inserts {len(plan.inserts)}, updates {len(plan.updates)}, deletes {len(plan.deletes)}"
        f"{'' if allow_deletes else ' (commented out: --allow-deletes)'}, left out in flight {plan.in_flight}",
        "",
    ]
    body: list[str] = []
    for start in range(0, len(statements), commit_every):
        batch = statements[start : start + commit_every]
        body += [s for s in (dialect.begin, *batch, dialect.commit) if s]
    return "\n".join(header + body) + "\n"


def reload_note(plan: SyncPlan, dialect, note: str, *, session_id: str, generated_at: datetime) -> str:
    """A target that is not patched by statements (a Delta bronze table): what to do, and the keys."""
    lines = [
        f"-- DB Sentinel differences of {plan.label} ({dialect.name} target {plan.table})",
        f"-- session {session_id}, generated {generated_at.isoformat(timespec='seconds')}",
        f"-- missing in the target {len(plan.inserts)}, different {len(plan.updates)}, "
        f"missing in the source {len(plan.deletes)}, left out in flight {plan.in_flight}",
        f"-- no statements: {note}",
        "",
    ]
    names = ", ".join(plan.primary_key)
    for title, keys in (
        ("missing in the target", plan.inserts),
        ("different", plan.updates),
        ("missing in the source", plan.deletes),
    ):
        lines += [f"-- {title} ({names}): {', '.join(dialect.literal(v) for v in key)}" for key in keys]
    return "\n".join(lines) + "\n"


def plan_sync(comparator: TableComparator, comparison: TableComparison, verified: Verified) -> SyncPlan:
    """The sync plan of verified differences, with the current source rows. A row that changed again since
    the re-verification (gone from the source, or now equal) is left out and counted as in flight."""
    columns, names = comparison.columns, [c for c, _ in comparison.columns]
    schema = comparison.schema or comparator.schema or Schema([], [])  # none known: the same names

    def target(name: str) -> str:
        return schema.side_name("target", name)

    inserts = comparator.rows(comparator.source, verified.safe_to_insert, columns, canonical=False)
    changed = comparator.differing_columns(verified.valid_update_pks, columns)
    current = comparator.rows(comparator.source, verified.valid_update_pks, columns, canonical=False, filtered=False)
    updates = {
        k: {target(c): current[k][names.index(c)] for c in changed[k]}
        for k in verified.valid_update_pks
        if changed.get(k) and k in current
    }
    inserts = {k: inserts[k] for k in verified.safe_to_insert if k in inserts}
    vanished = len(verified.safe_to_insert) - len(inserts) + len(verified.valid_update_pks) - len(updates)
    return SyncPlan(
        table=comparator.target_table,
        label=comparator.spec.label,
        primary_key=[target(k) for k in comparator.spec.primary_key],
        columns=[target(c) for c in names],
        inserts=inserts,
        updates=updates,
        deletes=list(verified.valid_delete_pks),
        in_flight=len(verified.in_flight) + vanished,
    )


def sync_sql(comparator: TableComparator, comparison: TableComparison, verified: Verified, **options) -> str:
    return render(plan_sync(comparator, comparison, verified), comparator.target_dialect, **options)
