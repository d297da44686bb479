"""``sentinel compare CONFIG``: compare the configured tables and write sync SQL, summaries and a report.

    sentinel compare CONFIG --resume <id or prefix> [--retry-failed]
    sentinel compare CONFIG --list-sessions | --status <id> | --cleanup <days>

Exit status: 0 when every table is equal, 1 when differences were found, 2 when a table failed or the
input was refused.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from include.sentinel.config import ConfigError, load_config
from include.sentinel.run import REPORT_FIELDS, run_comparison
from include.sentinel.session import SessionNotFound, SessionStore


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentinel", description="Compare tables between two databases.")
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output_dir:
        from dataclasses import replace

        config = replace(config, output_dir=args.output_dir)
    store = SessionStore(config.output_dir)
    try:
        if args.list_sessions:
            for session in store.list():
                done = session.counts()["completed"]
                print(
                    f"Session ID: {session.session_id}\n  Started: {session.start_time}\n  Status: {session.status}"
                    f"\n  Progress: {done}/{len(session.table_progress)} tables\n  Config: {session.config}"
                )
            return 0
        if args.status:
            print(store.load(args.status).summary())
            return 0
        if args.cleanup is not None:
            removed = store.cleanup(args.cleanup)
            print(f"removed {len(removed)} sessions older than {args.cleanup:g} days")
            return 0
        rows = run_comparison(
            config,
            tables=args.table,
            allow_deletes=args.allow_deletes,
            reverify_wait=args.reverify_wait,
            resume=args.resume,
            retry_failed=args.retry_failed,
            config_name=str(args.config),
        )
    except SessionNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: resume with --resume <session id> (see --list-sessions)", file=sys.stderr)
        return 130
    for row in rows:
        print("  ".join(f"{k}={row[k]}" for k in REPORT_FIELDS if row.get(k) not in (None, "")))
    if any(r["status"] == "failed" for r in rows):
        return 2
    return 1 if any(r.get("sql_file") for r in rows) else 0
