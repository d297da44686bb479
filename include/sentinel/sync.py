"""Sync SQL in the target's dialect: INSERT the rows missing in the target, UPDATE only the differing
columns, DELETE the rows missing in the source (commented out unless deletes are allowed: deleting on a
DR database is a decision), a COMMIT every ``commit_every`` statements."""

from __future__ import annotations

from datetime import datetime

from include.sentinel.compare import TableComparator, TableComparison
from include.sentinel.dialects.postgres import Key, ident
from include.sentinel.verify import Verified


def sync_sql(
    comparator: TableComparator,
    comparison: TableComparison,
    verified: Verified,
    *,
    session_id: str,
    generated_at: datetime,
    allow_deletes: bool = False,
    commit_every: int = 1000,
) -> str:
    dialect, table, pk = comparator.dialect, comparator.table, comparator.spec.primary_key
    literal = dialect.literal
    columns = comparison.columns
    names = [*pk, *(c for c, _ in columns)]

    def where(key: Key) -> str:
        return " AND ".join(f"{ident(k)} = {literal(v)}" for k, v in zip(pk, key, strict=True))

    statements: list[str] = []
    inserts = comparator.rows(comparator.source, verified.safe_to_insert, columns, canonical=False)
    for key in verified.safe_to_insert:
        values = ", ".join(literal(v) for v in (*key, *inserts[key]))
        statements.append(f"INSERT INTO {table} ({', '.join(ident(n) for n in names)}) VALUES ({values});")
    changed = comparator.differing_columns(verified.valid_update_pks, columns)
    updates = comparator.rows(comparator.source, verified.valid_update_pks, columns, canonical=False)
    positions = {name: i for i, (name, _) in enumerate(columns)}
    for key in verified.valid_update_pks:
        sets = ", ".join(f"{ident(c)} = {literal(updates[key][positions[c]])}" for c in changed[key])
        statements.append(f"UPDATE {table} SET {sets} WHERE {where(key)};")
    prefix = "" if allow_deletes else "-- "
    for key in verified.valid_delete_pks:
        statements.append(f"{prefix}DELETE FROM {table} WHERE {where(key)};")

    counts = verified.counts()
    header = [
        f"-- DB Sentinel sync SQL for {comparator.spec.label} ({dialect.name})",
        f"-- session {session_id}, generated {generated_at.isoformat(timespec='seconds')}",
        f"-- inserts {counts['safe_to_insert']}, updates {counts['valid_update_pks']}, "
        f"deletes {counts['valid_delete_pks']}{'' if allow_deletes else ' (commented out: --allow-deletes)'}, "
        f"left out in flight {counts['in_flight']}",
        "",
    ]
    body: list[str] = []
    for i, statement in enumerate(statements, 1):
        body.append(statement)
        if i % commit_every == 0:
            body.append("COMMIT;")
    if statements and (len(statements) % commit_every):
        body.append("COMMIT;")
    return "\n".join(header + body) + "\n"
