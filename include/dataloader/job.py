"""The load job: one entrypoint for the Databricks ``spark_python_task`` and the local runner.

    python -m include.dataloader.job --row '<control row JSON>' --dbconfig '<dbconfig JSON>'
        [--watermark W] [--interval-start A --interval-end B]
        [--action load|plan|prepare|chunk|finalize] [--chunk '<chunk JSON>'] [--engine local|databricks]

(or ``python include/dataloader/job.py ...``, as a Databricks ``spark_python_task`` runs it).

It loads one table (or one step of a chunked backfill) and prints exactly one line of JSON on stdout:
the summary (``{"summary": {...}}``) or the chunk plan (``{"chunks": [...]}``). Logs go to stderr.
The job never touches the control database: the caller records the lifecycle.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (Databricks spark_python_task): make `include` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from include.control.model import CONFIG_FIELDS, ControlRow
from include.dataloader.dialects import ConnectionParams
from include.dataloader.engine import ENGINES, Engine
from include.dataloader.strategies import STRATEGIES, chunked_backfill
from include.dataloader.strategies.base import LoadContext, LoadSummary

log = logging.getLogger("dataloader.job")
ACTIONS = ("load", "plan", "prepare", "chunk", "finalize")


def control_row(data: Mapping[str, Any]) -> ControlRow:
    """A control row from a database row or a JSON payload (status columns are ignored)."""
    return ControlRow.from_mapping({k: v for k, v in data.items() if k in CONFIG_FIELDS})


def execute(
    engine: Engine,
    row: ControlRow,
    dbconfig: Mapping[str, Any],
    *,
    params: ConnectionParams | None = None,
    **step: Any,
) -> dict[str, Any]:
    """Run one step (``action``, ``watermark``, ``interval``, ``chunk``) of a table's load; what the load
    staged on the way (the local engine's extracted files) is removed when it ends.

    ``params``: the source's resolved connection (in Airflow, its connection); None: from the dbconfig."""
    with engine.load_context(row, dbconfig, params) as ctx:
        return _step(ctx, row, dbconfig, **step)


def _step(
    ctx: LoadContext,
    row: ControlRow,
    dbconfig: Mapping[str, Any],
    *,
    action: str = "load",
    watermark: str | None = None,
    interval: tuple[str, str] | None = None,
    chunk: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    log.info("%s: %s (%s) from %s into %s", row.control_key, action, row.load_strategy, dbconfig["db_type"], ctx.target)
    if action == "load":
        result: LoadSummary | list = STRATEGIES[row.load_strategy](ctx, watermark, interval)
    elif action == "plan":  # the target is prepared first, so that the chunks can run in any order
        chunked_backfill.prepare(ctx)
        chunks = chunked_backfill.plan(ctx)
        log.info("%s: %d chunks", row.control_key, len(chunks))
        return {"chunks": [c.as_dict() for c in chunks]}
    elif action == "prepare":
        return {"added_columns": chunked_backfill.prepare(ctx)}
    elif action == "chunk":
        result = chunked_backfill.load_chunk(ctx, chunked_backfill.Chunk.from_dict(dict(chunk or {})))
    elif action == "finalize":
        result = chunked_backfill.finalize(ctx)
    else:
        raise ValueError(f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}")
    log.info("%s: %s", row.control_key, result.to_json())
    return {"summary": json.loads(result.to_json())}


def job_arguments(
    row: Mapping[str, Any],
    dbconfig: Mapping[str, Any],
    *,
    action: str = "load",
    watermark: str | None = None,
    interval: tuple[str, str] | None = None,
    chunk: Mapping[str, Any] | None = None,
    engine: str = "databricks",
) -> list[str]:
    """The command-line arguments of one job run (a Databricks spark_python_task's ``parameters``).

    Only configuration travels: the dbconfig holds secret names, never secret values.
    """
    config = {k: v for k, v in control_row(row).as_columns().items() if v is not None}
    db = {k: dbconfig[k] for k in ("db_config_key", "db_type", "db_config_value", "db_kv_scope")}
    args = ["--row", json.dumps(config, sort_keys=True), "--dbconfig", json.dumps(db, sort_keys=True, default=str)]
    args += ["--action", action, "--engine", engine]
    if watermark is not None:
        args += ["--watermark", watermark]
    if interval is not None:
        args += ["--interval-start", interval[0], "--interval-end", interval[1]]
    if chunk is not None:
        args += ["--chunk", json.dumps(dict(chunk), sort_keys=True)]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dataloader-job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", required=True, help="the control row as JSON")
    parser.add_argument("--dbconfig", required=True, help="the table_control_dbconfig row as JSON")
    parser.add_argument("--watermark")
    parser.add_argument("--interval-start", help="with --interval-end: reload start <= cursor < end")
    parser.add_argument("--interval-end")
    parser.add_argument("--action", choices=ACTIONS, default="load")
    parser.add_argument("--chunk", help="a chunk of the plan, as JSON (with --action chunk)")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="databricks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    result = execute(
        ENGINES[args.engine](),
        control_row(json.loads(args.row)),
        json.loads(args.dbconfig),
        action=args.action,
        watermark=args.watermark or None,
        interval=(args.interval_start, args.interval_end) if args.interval_start else None,
        chunk=json.loads(args.chunk) if args.chunk else None,
    )
    print(json.dumps(result, sort_keys=True, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
