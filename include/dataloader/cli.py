"""``dataloader``: manage the control database from a shell.

    dataloader db upgrade                        apply the schema migrations
    dataloader dbconfig add KEY --db-type T      register a source database (secret names only)
    dataloader tables add --control-key K ...    add one control row
    dataloader tables import FILE.yaml           add or update rows from YAML, all or nothing
    dataloader tables update KEY --set f=v ...   change fields of a row
    dataloader tables deactivate KEY
    dataloader tables list | show KEY
    dataloader run KEY                           load one table now on the local engine

The control database is ``--db-url`` or ``$DATALOADER_CONTROL_DB_URL``. Exit status 2 means the input
was refused; the message names the control key, the field and the fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from include.control import migrate
from include.control.db import ControlDbNotConfigured, control_db_url
from include.control.model import CONFIG_FIELDS, DB_TYPES, ControlRow, FieldProblem, InvalidControlRow
from include.control.repository import ControlRepository, ControlRowNotFound

LIST_COLUMNS = (
    "control_key",
    "db_type",
    "load_strategy",
    "cron",
    "is_active",
    "last_status",
    "incremental_value",
)


class InvalidImportFile(ValueError):
    pass


def load_import_file(path: Path) -> tuple[list[ControlRow], list[dict[str, Any]]]:
    """Parse and validate a YAML file of ``dbconfigs:`` and ``tables:``; every problem is reported at once."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidImportFile(f"{path}: cannot read: {exc}") from exc
    if not isinstance(document, Mapping) or set(document) - {"dbconfigs", "tables"}:
        raise InvalidImportFile(f"{path}: expected a mapping with the keys 'dbconfigs' and 'tables'")

    dbconfigs = [dict(c) for c in document.get("dbconfigs") or []]
    for cfg in dbconfigs:
        cfg.setdefault("db_kv_scope", None)
        if cfg.get("db_type") not in DB_TYPES:
            raise InvalidImportFile(
                f"{path}: dbconfig {cfg.get('db_config_key')!r}: db_type {cfg.get('db_type')!r} "
                f"is not supported; set one of: {', '.join(DB_TYPES)}"
            )

    rows: list[ControlRow] = []
    errors: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(document.get("tables") or []):
        if not isinstance(entry, Mapping):
            errors.append(f"tables[{index}]: expected a mapping of control-table fields")
            continue
        key = entry.get("control_key")
        if key in seen:
            errors.append(
                str(InvalidControlRow(key, [FieldProblem("control_key", "appears twice in the file", "keep one")]))
            )
            continue
        seen.add(key)
        try:
            rows.append(ControlRow.from_mapping(entry))
        except InvalidControlRow as exc:
            errors.append(str(exc))
    if errors:
        raise InvalidImportFile(f"{path}: nothing was imported:\n" + "\n".join(errors))
    return rows, dbconfigs


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    changes = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        if not sep:
            raise InvalidImportFile(f"--set {item!r}: expected FIELD=VALUE, e.g. --set cron='0 * * * *'")
        changes[name.strip()] = yaml.safe_load(raw) if raw else None
    return changes


def _show(repo: ControlRepository, key: str) -> str:
    row = repo.require(key)
    width = max(map(len, row))
    lines = [f"{k.ljust(width)}  {'' if v is None else v}" for k, v in row.items()]
    runs = repo.runs(key)[-5:]
    if runs:
        cols = (
            "run_id",
            "load_status",
            "load_start_time",
            "load_end_time",
            "rows_processed",
            "error_message",
        )
        lines += ["", "recent runs:", format_table(runs, cols)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dataloader", description="Manage the DataLoader control database.")
    parser.add_argument("--db-url", help="control database URL (default: $DATALOADER_CONTROL_DB_URL)")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="schema migrations").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply all pending migrations")
    db.add_parser("current", help="print the applied revision")

    dbconfig = commands.add_parser("dbconfig", help="source database configs").add_subparsers(
        dest="action", required=True
    )
    add_cfg = dbconfig.add_parser("add", help="add or replace a source database config")
    add_cfg.add_argument("db_config_key")
    add_cfg.add_argument("--db-type", required=True, choices=DB_TYPES)
    add_cfg.add_argument("--value", default="{}", help='JSON object of secret names, e.g. \'{"host": "kv-host"}\'')
    add_cfg.add_argument("--kv-scope", help="secret scope that holds the named secrets")
    dbconfig.add_parser("list")

    tables = commands.add_parser("tables", help="control rows").add_subparsers(dest="action", required=True)
    add = tables.add_parser("add", help="add one control row")
    for name in CONFIG_FIELDS:
        if name != "is_active":
            add.add_argument(f"--{name.replace('_', '-')}", dest=name)
    add.add_argument("--inactive", action="store_true", help="add the row switched off")
    imp = tables.add_parser("import", help="add or update rows from a YAML file (all or nothing)")
    imp.add_argument("file", type=Path)
    upd = tables.add_parser("update", help="change fields of a row")
    upd.add_argument("control_key")
    upd.add_argument("--set", dest="assignments", action="append", required=True, metavar="FIELD=VALUE")
    tables.add_parser("deactivate", help="switch a row off").add_argument("control_key")
    tables.add_parser("list", help="list rows").add_argument("--active", action="store_true")
    tables.add_parser("show", help="a row with its recent runs").add_argument("control_key")

    run = commands.add_parser("run", help="load one table now on the local engine, recording the lifecycle")
    run.add_argument("control_key")
    run.add_argument("--run-id", help="default: cli__<UTC time>")
    run.add_argument("--warehouse", type=Path, help="local Delta warehouse (default: $DATALOADER_WAREHOUSE)")
    return parser


def _run_load(repo: ControlRepository, args: argparse.Namespace) -> str:
    from include.dataloader import runner
    from include.dataloader.engine import local_engine

    run_id = args.run_id or f"cli__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%f}"
    summary = runner.run(repo, args.control_key, run_id, local_engine(args.warehouse))
    return json.dumps(summary, sort_keys=True)


def run(args: argparse.Namespace) -> str:
    url = control_db_url(args.db_url)
    repo = ControlRepository(url, change_source="cli")
    match (args.command, getattr(args, "action", None)):
        case ("run", None):
            return _run_load(repo, args)
        case ("db", "upgrade"):
            migrate.upgrade(url)
            return f"control database at revision {migrate.current_revision(url)}"
        case ("db", "current"):
            return str(migrate.current_revision(url))
        case ("dbconfig", "add"):
            row = repo.upsert_dbconfig(args.db_config_key, args.db_type, json.loads(args.value), args.kv_scope)
            return f"dbconfig {row['db_config_key']} ({row['db_type']}) saved"
        case ("dbconfig", "list"):
            return format_table(repo.list_dbconfigs(), ("db_config_key", "db_type", "db_kv_scope", "db_config_value"))
        case ("tables", "add"):
            fields = {n: getattr(args, n) for n in CONFIG_FIELDS if getattr(args, n, None) is not None}
            fields["is_active"] = not args.inactive
            row = repo.add(ControlRow.from_mapping(fields))
            return f"added {row['control_key']} ({row['load_strategy']}, next load {row['next_load_date_time']})"
        case ("tables", "import"):
            rows, dbconfigs = load_import_file(args.file)
            added, updated = repo.import_rows(rows, dbconfigs)
            return f"imported {args.file}: {len(added)} added, {len(updated)} updated"
        case ("tables", "update"):
            row = repo.update(args.control_key, _parse_assignments(args.assignments))
            return f"updated {row['control_key']}"
        case ("tables", "deactivate"):
            repo.deactivate(args.control_key)
            return f"deactivated {args.control_key}"
        case ("tables", "list"):
            return format_table(repo.list(active_only=args.active), LIST_COLUMNS)
        case ("tables", "show"):
            return _show(repo, args.control_key)
    raise AssertionError(f"unhandled command {args.command} {args.action}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(run(args))
    except (
        InvalidControlRow,
        InvalidImportFile,
        ControlRowNotFound,
        ControlDbNotConfigured,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
