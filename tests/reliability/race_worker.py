"""Tests only: one worker of a race on a control row, run in a thread or in a process of its own."""

from __future__ import annotations

import traceback

from include.control.lifecycle import Lifecycle, RowBusy
from include.control.repository import ControlRepository

KEY = "sales.orders"
WATERMARK = "2026-11-30 23:59:59.999999+00:00"  # the row's cursor is a timestamp


def one_run(url: str, run_id: str, barrier, rows: int) -> str:
    """A whole run as a load task makes it: queue, start, succeed; ``busy`` when another run holds the row."""
    repo = ControlRepository(url, change_source=f"worker:{run_id}")
    life = Lifecycle(repo, KEY, run_id)  # liveness unknown: a held row is busy, as for `dataloader run`
    barrier.wait()
    try:
        life.queue()
        life.start()
    except RowBusy:
        return "busy"
    life.succeed({"inserted": rows, "updated": 0, "deleted": 0})  # the count tells the runs apart
    return "succeeded"


def one_finish(url: str, name: str, barrier, run_id: str, how: str) -> str:
    """One of several ends of the same run, at once: ``how`` it ends; the result says whether it won."""
    repo = ControlRepository(url, change_source=f"worker:{how}")
    barrier.wait()
    done = {
        "succeed": lambda: repo.succeed(KEY, run_id, rows_processed=1, watermark=WATERMARK),
        "fail": lambda: repo.fail(KEY, run_id, "failed by a racing worker"),
        "cancel": lambda: repo.cancel(KEY, run_id, "Cancelled - exceeded timeout"),
        "orphan": lambda: repo.end_orphaned_run(KEY, run_id, "Ended: its owner is gone"),
    }[how]()
    return "won" if done is not None else "lost"


def in_process(queue, target, url: str, name: str, barrier, *extra) -> None:
    """A worker in a process of its own: its result goes back through ``queue`` as (name, result).

    An exception goes back too, as its traceback: a worker that died silently would leave the test waiting
    on the queue with nothing to say why."""
    try:
        result = target(url, name, barrier, *extra)
    except BaseException:
        result = "error: " + traceback.format_exc()
    queue.put((name, result))
