"""``sentinel compare CONFIG``: compare the configured tables and write sync SQL, summaries and a report.

    sentinel compare CONFIG [--table SCHEMA.TABLE] [--allow-deletes] [--reverify-wait SECONDS]
    sentinel compare CONFIG --resume <id or prefix> [--retry-failed]
    sentinel compare CONFIG --list-sessions | --status <id> | --cleanup <days>

Exit status: 0 when every table is equal, 1 when differences were found, 2 when the input was refused or a
table failed, always with one line on stderr naming the table, the field and the fix (``--debug`` adds the
traceback). Nothing is written before the config passes validation.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from include.sentinel.config import load_config
from include.sentinel.run import error_text, run_comparison
from include.sentinel.session import SessionStore
from include.sentinel.steps import REPORT_FIELDS


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a refusal is one line (naming the flag) and a pointer to --help, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="sentinel", description="Compare tables between two databases.")
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser("compare", help="compare the tables of a config file")
    compare.add_argument("config", type=Path)
    compare.add_argument("--table", action="append", help="SCHEMA.TABLE to compare (repeatable); default: all")
    compare.add_argument("--allow-deletes", action="store_true", help="emit DELETEs uncommented")
    compare.add_argument("--reverify-wait", type=float, default=0, help="seconds to wait before re-verifying")
    compare.add_argument("--output-dir", type=Path, help="default: the config's options.output_dir")
    compare.add_argument("--resume", metavar="SESSION", help="resume a session (its id or a unique prefix)")
    compare.add_argument("--retry-failed", action="store_true", help="with --resume: only the failed tables")
    compare.add_argument("--list-sessions", action="store_true")
    compare.add_argument("--status", metavar="SESSION", help="print a session's summary")
    compare.add_argument("--cleanup", type=float, metavar="DAYS", help="remove sessions older than DAYS")
    compare.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def _sessions(store: SessionStore, args) -> int:
    if args.list_sessions:
        for session in store.list():
            done = session.counts()["completed"]
            print(
                f"Session ID: {session.session_id}\n  Started: {session.start_time}\n  Status: {session.status}"
                f"\n  Progress: {done}/{len(session.table_progress)} tables\n  Config: {session.config}"
            )
    elif args.status:
        print(store.load(args.status).summary())
    else:
        removed = store.cleanup(args.cleanup)
        print(f"removed {len(removed)} sessions older than {args.cleanup:g} days")
    return 0


def _checked(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Refuse flag values argparse lets through, before anything is read or written."""
    if args.reverify_wait < 0:
        parser.error(f"argument --reverify-wait: {args.reverify_wait:g} is negative; give seconds, 0 or more")
    if args.cleanup is not None and args.cleanup < 0:
        parser.error(f"argument --cleanup: {args.cleanup:g} is negative; give the age in days, 0 or more")
    if args.retry_failed and not args.resume:
        parser.error("argument --retry-failed: only with --resume SESSION (see --list-sessions)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    commands = parser()
    args = _checked(commands.parse_args(argv), commands)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    secrets: list[str] = []
    try:
        config = load_config(args.config)
        secrets = config.secrets()
        if args.output_dir:
            config = replace(config, output_dir=args.output_dir)
        if args.list_sessions or args.status or args.cleanup is not None:
            return _sessions(SessionStore(config.output_dir), args)
        rows = run_comparison(
            config,
            tables=args.table,
            allow_deletes=args.allow_deletes,
            reverify_wait=args.reverify_wait,
            resume=args.resume,
            retry_failed=args.retry_failed,
            config_name=str(args.config),
        )
    except KeyboardInterrupt:
        print("interrupted: resume with --resume <session id> (see --list-sessions)", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error_text(exc, secrets)}", file=sys.stderr)
        return 2
    for row in rows:
        print("  ".join(f"{k}={row[k]}" for k in REPORT_FIELDS if row.get(k) not in (None, "")))
    failed = [r for r in rows if r["status"] == "failed"]
    for row in failed:
        error, table = row["error"], f"table {row['table']}"
        print(f"error: {error if error.startswith(table) else f'{table}: {error}'}", file=sys.stderr)
    if failed:
        return 2
    return 1 if any(r.get("sql_file") or r.get("in_flight") for r in rows) else 0
