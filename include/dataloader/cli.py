"""``dataloader``: manage the control database from a shell.

    dataloader db upgrade                        apply the schema migrations
    dataloader dbconfig add KEY --db-type T      register a source database (secret names only)
    dataloader tables add --control-key K ...    add one control row
    dataloader tables import FILE.yaml           add or update rows from YAML, all or nothing
    dataloader tables update KEY --set f=v ...   change fields of a row
    dataloader tables deactivate KEY
    dataloader tables list | show KEY
    dataloader tables cancel KEY                 end the current run as Cancelled (row Failed)
    dataloader tables reset KEY                  a Failed row back to ready, retry count cleared
    dataloader run KEY [--take-over]             load one table now on the local engine
    dataloader verify KEY                        compare the source with its bronze table (local engine)

The control database is ``--db-url`` or ``$DATALOADER_CONTROL_DB_URL``. Exit status: 0 done, 1 the load
ran and failed (the recorded error), 2 refused (the message names the control key, the field and the
fix). No traceback unless ``--debug``. Changes are recorded in the history as ``cli:<user>@<host>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from include.control import migrate
from include.control.db import ControlDbNotConfigured, control_db_url
from include.control.model import (
    CONFIG_FIELDS,
    DB_TYPES,
    FIELD_HELP,
    REQUIRED_FIELDS,
    ControlRow,
    FieldProblem,
    InvalidControlRow,
    InvalidDbConfig,
    dbconfig_problems,
    field_kind,
    parse_fields,
    strategy_requirements,
)
from include.control.repository import ControlRepository, ControlRowNotFound
from include.dataloader import operations, run_owner
from include.dataloader.operations import LoadFailed, Refused
from include.dataloader.redact import describe, redact

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
    except UnicodeDecodeError:
        raise InvalidImportFile(
            f"{path}: not a text file; give a YAML file with 'tables:' (and 'dbconfigs:')"
        ) from None
    except yaml.MarkedYAMLError as exc:  # its message spans lines: the problem and where it is are enough
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise InvalidImportFile(f"{path}: not valid YAML at {where}: {exc.problem or exc}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidImportFile(f"{path}: cannot read: {exc}") from exc
    if not isinstance(document, Mapping) or set(document) - {"dbconfigs", "tables"}:
        raise InvalidImportFile(f"{path}: expected a mapping with the keys 'dbconfigs' and 'tables'")
    if not document.get("tables") and not document.get("dbconfigs"):
        raise InvalidImportFile(
            f"{path}: nothing to import; list control rows under 'tables:' (sources under 'dbconfigs:')"
        )
    for section in ("dbconfigs", "tables"):
        if not isinstance(document.get(section) or [], list):
            raise InvalidImportFile(f"{path}: '{section}' must be a list of mappings, one per entry")

    dbconfigs = []
    for index, cfg in enumerate(document.get("dbconfigs") or []):
        if not isinstance(cfg, Mapping):
            raise InvalidImportFile(f"{path}: dbconfigs[{index}]: expected a mapping with db_config_key and db_type")
        cfg = {"db_kv_scope": None, "db_config_value": {}, **cfg}
        if problems := dbconfig_problems(cfg.get("db_config_key"), cfg.get("db_type"), cfg["db_config_value"]):
            raise InvalidImportFile(f"{path}: {InvalidDbConfig(cfg.get('db_config_key'), problems)}")
        dbconfigs.append(cfg)

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


def _show(repo: ControlRepository, key: str) -> str:
    row = repo.require(key)
    width = max(map(len, row))
    lines = [f"{k.ljust(width)}  {'' if v is None else v}" for k, v in row.items()]
    runs = repo.latest_runs(key, 5)
    if runs:
        cols = (
            "run_id",
            "load_status",
            "load_start_time",
            "load_end_time",
            "rows_processed",
            "run_host",
            "run_pid",
            "heartbeat_at",
            "verify_status",
            "error_message",
        )
        lines += ["", "recent runs:", format_table(runs, cols)]
    return "\n".join(lines)


# -- typed fields ---------------------------------------------------------------------------------


def _assignments(control_key: str, assignments: Sequence[str]) -> dict[str, Any]:
    raw: dict[str, str] = {}
    for item in assignments:
        name, sep, text = item.partition("=")
        if not sep:
            raise InvalidControlRow(
                control_key,
                [FieldProblem(name or item, f"--set {item!r} has no '='", "write FIELD=VALUE, e.g. cron='0 * * * *'")],
            )
        raw[name.strip()] = text
    return parse_fields(control_key, raw)


def _metavar(name: str) -> str:
    kind, choices = field_kind(name)
    return {"bool": "true|false", "int": "N", "list": "COL[,COL...]"}.get(kind) or (
        "{" + ",".join(choices) + "}" if choices else name.upper()
    )


def _strategy_summary() -> str:
    lines = ["what each --load-strategy needs besides the required flags:"]
    for strategy, needs in strategy_requirements().items():
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in needs) or "nothing more"
        lines.append(f"  {strategy:<17} {flags}")
    lines += [
        "",
        "values are typed as on a shell: --cron '*/15 * * * *' or @daily, --primary-key-columns order_id,line_no",
        "or '[\"order_id\"]', --rolling-delete-missing true (or just the flag).",
    ]
    return "\n".join(lines)


def one_line(text: str) -> str:
    """A multi-line refusal (one line per problem) as the one line the CLI prints: problems joined by ' | '."""
    parts = [line.strip().removeprefix("- ") for line in text.splitlines() if line.strip()]
    joined = parts[0] if parts else ""
    for part in parts[1:]:
        joined += (" " if joined.endswith(":") else " | ") + part
    return joined


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a refusal is one line (naming the flag) and a pointer to --help, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


# -- the parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser = OneLineParser(
        prog="dataloader",
        description="Manage the DataLoader control database.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db-url", help="control database URL (default: $DATALOADER_CONTROL_DB_URL)")
    parser.add_argument("--debug", action="store_true", default=False, help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    def leaf(group: argparse._SubParsersAction, name: str, **kw: Any) -> argparse.ArgumentParser:
        return group.add_parser(name, parents=[common], **kw)

    db = commands.add_parser("db", help="schema migrations").add_subparsers(dest="action", required=True)
    leaf(db, "upgrade", help="apply all pending migrations")
    leaf(db, "current", help="print the applied revision")

    dbconfig = commands.add_parser("dbconfig", help="source database configs").add_subparsers(
        dest="action", required=True
    )
    add_cfg = leaf(dbconfig, "add", help="add or replace a source database config")
    add_cfg.add_argument("db_config_key")
    add_cfg.add_argument("--db-type", required=True, choices=DB_TYPES)
    add_cfg.add_argument("--value", default="{}", help='JSON object of secret names, e.g. \'{"host": "kv-host"}\'')
    add_cfg.add_argument("--kv-scope", help="secret scope that holds the named secrets")
    leaf(dbconfig, "list")

    tables = commands.add_parser("tables", help="control rows").add_subparsers(dest="action", required=True)
    add = leaf(
        tables,
        "add",
        help="add one control row",
        epilog=_strategy_summary(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name in CONFIG_FIELDS:
        flag = f"--{name.replace('_', '-')}"
        text = FIELD_HELP[name] + (" (required)" if name in REQUIRED_FIELDS else "")
        if field_kind(name)[0] == "bool":  # `--flag`, `--flag true`, `--flag false`
            add.add_argument(flag, dest=name, nargs="?", const="true", metavar=_metavar(name), help=text)
        else:
            add.add_argument(flag, dest=name, metavar=_metavar(name), help=text)
    add.add_argument("--inactive", action="store_true", help="add the row switched off (same as --is-active false)")
    imp = leaf(tables, "import", help="add or update rows from a YAML file (all or nothing)")
    imp.add_argument("file", type=Path)
    upd = leaf(tables, "update", help="change fields of a row")
    upd.add_argument("control_key")
    upd.add_argument(
        "--set",
        dest="assignments",
        action="append",
        required=True,
        metavar="FIELD=VALUE",
        help="a field and its value as typed on a shell (cron='*/15 * * * *', primary_key_columns=a,b, "
        "is_active=false); an empty value clears the field",
    )
    leaf(tables, "deactivate", help="switch a row off").add_argument("control_key")
    leaf(tables, "list", help="list rows").add_argument("--active", action="store_true")
    leaf(tables, "show", help="a row with its recent runs").add_argument("control_key")
    cancel = leaf(
        tables,
        "cancel",
        help="end the row's current run as Cancelled (row Failed); also fails its Airflow run and cancels its "
        "Databricks run when their APIs are configured",
    )
    cancel.add_argument("control_key")
    cancel.add_argument("--reason", help="why, recorded in the message")
    leaf(tables, "reset", help="a Failed row back to ready, with its retry count cleared").add_argument("control_key")

    run = leaf(commands, "run", help="load one table now on the local engine, recording the lifecycle")
    run.add_argument("control_key")
    run.add_argument("--run-id", help="default: cli__<UTC time>")
    run.add_argument("--warehouse", type=Path, help="local Delta warehouse (default: $DATALOADER_WAREHOUSE)")
    run.add_argument(
        "--take-over",
        action="store_true",
        help="end the run holding the row when its owner is provably gone (a CLI run silent for "
        "$DATALOADER_CLI_SILENT_MINUTES, or an Airflow run that has ended), then load",
    )
    verify = leaf(
        commands,
        "verify",
        help="compare the source with its bronze table in the load strategy's terms, as the verify task does; "
        "exit 0 equal, 1 a difference, 2 refused",
    )
    verify.add_argument("control_key")
    verify.add_argument("--run-id", help="the run whose load is verified (default: the latest Succeeded run)")
    verify.add_argument("--warehouse", type=Path, help="local Delta warehouse (default: $DATALOADER_WAREHOUSE)")
    verify.add_argument(
        "--artifacts",
        type=Path,
        help="where the report goes (default: $DATALOADER_ARTIFACTS_ROOT, else beside the warehouse)",
    )
    return parser


EXIT_STATUS = """exit status:
  0  done
  1  the load ran and failed (the message is the error recorded in the control table); verify: the
     bronze table differs from its source
  2  refused: bad input, or the row's state does not allow it (the message names the row, the field and
     the fix), or the control database could not be used
  130, 143  the load was stopped by Ctrl+C or SIGTERM (recorded in the control table)"""


# -- commands -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> str:
    url = control_db_url(args.db_url)
    who = run_owner.operator()
    settings = run_owner.Process.current().settings() if args.command == "run" else None
    repo = ControlRepository(url, change_source=f"cli:{who}", settings=settings)
    match (args.command, getattr(args, "action", None)):
        case ("run", None):
            return operations.run_load(
                repo,
                args.control_key,
                run_id=args.run_id,
                take_over=args.take_over,
                warehouse=args.warehouse,
                who=who,
                note=lambda text: print(f"note: {text}", file=sys.stderr),
            )
        case ("verify", None):
            return operations.verify(
                repo, args.control_key, run_id=args.run_id, warehouse=args.warehouse, artifacts=args.artifacts
            )
        case ("db", "upgrade"):
            migrate.upgrade(url)
            return f"control database at revision {migrate.current_revision(url)}"
        case ("db", "current"):
            return str(migrate.current_revision(url))
        case ("dbconfig", "add"):
            try:
                value = json.loads(args.value)
            except json.JSONDecodeError as exc:
                raise Refused(
                    f"dbconfig {args.db_config_key}: --value is not JSON ({exc.msg}); "
                    'write an object of secret names, e.g. \'{"host": "kv-host"}\''
                ) from None
            row = repo.upsert_dbconfig(args.db_config_key, args.db_type, value, args.kv_scope)
            return f"dbconfig {row['db_config_key']} ({row['db_type']}) saved"
        case ("dbconfig", "list"):
            return format_table(repo.list_dbconfigs(), ("db_config_key", "db_type", "db_kv_scope", "db_config_value"))
        case ("tables", "add"):
            raw = {n: getattr(args, n) for n in CONFIG_FIELDS if getattr(args, n, None) is not None}
            fields = parse_fields(args.control_key, raw)
            if args.inactive:
                fields["is_active"] = False
            row = repo.add(ControlRow.from_mapping(fields))
            return f"added {row['control_key']} ({row['load_strategy']}, next load {row['next_load_date_time']})"
        case ("tables", "import"):
            rows, dbconfigs = load_import_file(args.file)
            added, updated = repo.import_rows(rows, dbconfigs)
            return f"imported {args.file}: {len(added)} added, {len(updated)} updated"
        case ("tables", "update"):
            row = repo.update(args.control_key, _assignments(args.control_key, args.assignments))
            return f"updated {row['control_key']}"
        case ("tables", "deactivate"):
            repo.deactivate(args.control_key)
            return f"deactivated {args.control_key}"
        case ("tables", "list"):
            return format_table(repo.list(active_only=args.active), LIST_COLUMNS)
        case ("tables", "show"):
            return _show(repo, args.control_key)
        case ("tables", "cancel"):
            return operations.cancel(repo, args.control_key, args.reason, who)
        case ("tables", "reset"):
            return operations.reset(repo, args.control_key, who)
    raise AssertionError(f"unhandled command {args.command} {args.action}")


REFUSALS = (InvalidControlRow, InvalidImportFile, ControlRowNotFound, ControlDbNotConfigured, Refused, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, stream=sys.stderr)
    if not args.debug:  # the command's own lines say it; the library's log lines would repeat them
        logging.getLogger("include.dataloader").setLevel(logging.CRITICAL)
    try:
        print(run(args))
    except LoadFailed as exc:
        if args.debug:
            raise
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        refused = isinstance(exc, REFUSALS)
        text = redact(str(exc)) if refused else f"{describe(exc)} (run again with --debug for the traceback)"
        print(f"error: {one_line(text)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
