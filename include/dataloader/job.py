"""The load job: one entrypoint for the Databricks ``spark_python_task`` and the local runner.

    python -m include.dataloader.job --row '<control row JSON>' --dbconfig '<dbconfig JSON>'
        [--watermark W] [--action load|plan|prepare|chunk|finalize] [--chunk '<chunk JSON>']
        [--engine local|databricks]

It loads one table (or one step of a chunked backfill) and prints exactly one line of JSON on stdout:
the summary (``{"summary": {...}}``) or the chunk plan (``{"chunks": [...]}``). Logs go to stderr.
The job never touches the control database: the caller records the lifecycle.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from include.control.model import CONFIG_FIELDS, ControlRow
from include.dataloader.engine import ENGINES, Engine
from include.dataloader.strategies import STRATEGIES, chunked_backfill
from include.dataloader.strategies.base import LoadSummary

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
    action: str = "load",
    watermark: str | None = None,
    chunk: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    ctx = engine.context(row, dbconfig)
    log.info("%s: %s (%s) from %s into %s", row.control_key, action, row.load_strategy, dbconfig["db_type"], ctx.target)
    if action == "load":
        result: LoadSummary | list = STRATEGIES[row.load_strategy](ctx, watermark)
    elif action == "plan":
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dataloader-job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", required=True, help="the control row as JSON")
    parser.add_argument("--dbconfig", required=True, help="the table_control_dbconfig row as JSON")
    parser.add_argument("--watermark")
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
        chunk=json.loads(args.chunk) if args.chunk else None,
    )
    print(json.dumps(result, sort_keys=True, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
