"""A control row's lifecycle under re-execution: which run holds the row, and what each task leaves in it.

Airflow may clear, retry or backfill any task of any run, in any order, and runs of one table may be queued
together. So every task that writes the table *claims* the row for its own run before it works, and the
claim is what serialises the runs of one table:

- the row is **own** (this run holds it): the task goes on;
- **free** (no holder, or the holder's load has ended: Succeeded, or Failed and its run is no longer live):
  the task takes the row for its run;
- **busy** (another run holds it Queued or In Progress, or Failed while that run still runs other steps):
  :class:`RowBusy`; the caller waits and tries again (the operators defer; ``dataloader run`` refuses);
- **abandoned** (Queued or In Progress, but the holder's run has ended): taken over, and the holder's
  historical row becomes Failed with the reason.

Tasks are either the run's **final** task (``load``, ``finalize``), which re-opens the run's record (In
Progress, error cleared) and ends it Succeeded or Failed, or a **step** (``plan``, ``load_chunk[i]``), which
never clears another step's error: a failed step's error stays in the row (Failed) until that step
succeeds, and the row leaves Failed only when the final task succeeds. A step re-run alone after its run
had succeeded puts the row back to Succeeded when it succeeds.

Liveness of another run is the caller's knowledge (Airflow's run state); ``None`` means unknown.
No Airflow import here: ``dataloader run`` and the Airflow operators share this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from include.control.repository import ControlRepository, Row

Liveness = Callable[[str], bool | None]  # run id -> is that run still queued or running? None: cannot tell
Holding = Literal["own", "free", "busy", "abandoned"]

HELD = ("Queued", "In Progress")
STEP_LINE = re.compile(r"^(plan|load_chunk\[\d+\]): (.*)$")
MAX_STEP_ERROR_CHARS = 2000  # per failed step; the row's message holds one line per failed step


def unknown_liveness(run_id: str) -> bool | None:
    return None


class RowBusy(RuntimeError):
    """Another run holds the row; wait for it to end."""

    def __init__(self, control_key: str, run_id: str, holder: str, status: str):
        self.control_key, self.run_id, self.holder, self.status = control_key, run_id, holder, status
        super().__init__(
            f"{control_key}: run {run_id} waits for the row: it is {status} for run {holder}, which has not "
            "ended; runs of one table never write it at the same time. Let that run finish, or fail it "
            "(mark it failed in Airflow; a shell run: stop it), and this run goes on"
        )


class RowInactive(RuntimeError):
    def __init__(self, control_key: str, run_id: str):
        self.control_key, self.run_id = control_key, run_id
        super().__init__(
            f"{control_key} is inactive (is_active false): run {run_id} does not load it. To load it, "
            f"activate the row (dataloader tables update {control_key} --set is_active=true) and trigger a run"
        )


class RowLost(RuntimeError):
    def __init__(self, control_key: str, run_id: str, row: Mapping[str, Any]):
        super().__init__(
            f"{control_key}: the load of run {run_id} finished, but the row is now {row['last_status']} for run "
            f"{row['current_run_id']} (a monitor cancelled this run?); its result was not recorded. Clear this "
            "task to load again"
        )


def _one_line(error: str) -> str:
    text = " | ".join(part.strip() for part in error.strip().splitlines() if part.strip())
    return text if len(text) <= MAX_STEP_ERROR_CHARS else text[:MAX_STEP_ERROR_CHARS] + " ..."


def step_errors(message: str | None) -> dict[str, str]:
    """The failed steps named in a Failed row's message: step -> error."""
    found = (STEP_LINE.match(line) for line in (message or "").splitlines())
    return {m[1]: m[2] for m in found if m}


def _compose(errors: Mapping[str, str]) -> str:
    return "\n".join(f"{step}: {error}" for step, error in errors.items())


@dataclass
class Lifecycle:
    """The lifecycle of one run (``run_id``) of one control row."""

    repo: ControlRepository
    control_key: str
    run_id: str
    is_live: Liveness = unknown_liveness
    airflow_run_url: str | None = None

    def holding(self, row: Mapping[str, Any]) -> tuple[Holding, str | None]:
        """Who holds ``row``, from this run's point of view; with the reason when it was abandoned."""
        holder, status = row["current_run_id"], row["last_status"]
        if holder == self.run_id:
            return "own", None
        if holder is None or status not in (*HELD, "Failed"):
            return "free", None
        live = self.is_live(holder)
        if status in HELD:
            if live is False:
                return "abandoned", (
                    f"abandoned: the row said {status} after run {holder} had ended; run {self.run_id} took it over"
                )
            return "busy", None
        return ("busy", None) if live else ("free", None)  # Failed: its run may still run other steps

    def _take(self, status: str, message: str | None = None, *, keep_rows: bool = False) -> Row:
        """Claim the row as ``status``; retried when another run changed it between the read and the write."""
        for _ in range(5):
            row = self.repo.require(self.control_key)
            held, abandoned = self.holding(row)
            if held == "busy":
                raise RowBusy(self.control_key, self.run_id, row["current_run_id"], row["last_status"])
            if held != "own" and not row["is_active"]:
                raise RowInactive(self.control_key, self.run_id)
            claimed = self.repo.claim(
                self.control_key,
                self.run_id,
                status=status,
                holder=row["current_run_id"],
                holder_status=row["last_status"],
                message=message,
                airflow_run_url=self.airflow_run_url,
                abandoned=abandoned,
                keep_rows=keep_rows,
            )
            if claimed is not None:
                return claimed
        row = self.repo.require(self.control_key)
        raise RowBusy(self.control_key, self.run_id, row["current_run_id"], row["last_status"])

    # -- the run's first task ---------------------------------------------------------------------------

    def queue(self) -> Row:
        """Queued for this run; a no-op when the run already holds the row (its queue task was cleared)."""
        row = self.repo.require(self.control_key)
        if self.holding(row)[0] == "own":
            return row
        return self._take("Queued")

    # -- the run's final task: load, finalize -------------------------------------------------------------

    def start(self) -> Row:
        """In Progress for this run, its record re-opened and its error cleared: the run's result is redone."""
        return self._take("In Progress")

    def succeed(self, summary: Mapping[str, Any]) -> Row:
        done = self.repo.succeed(
            self.control_key,
            self.run_id,
            rows_processed=summary["inserted"] + summary["updated"] + summary["deleted"],
            watermark=summary.get("watermark"),
            message=summary.get("message"),
            switch_to_strategy=summary.get("switch_to_strategy"),
            watermark_rows=summary.get("watermark_rows"),
        )
        if done is None:
            raise RowLost(self.control_key, self.run_id, self.repo.require(self.control_key))
        return done

    # -- a step of the run: plan, load_chunk[i] -----------------------------------------------------------

    def _rerun_marker(self, step: str) -> str:
        return f"{step}: re-running for run {self.run_id}"

    def start_step(self, step: str) -> Row:
        """Hold the row for a step: Queued becomes In Progress; In Progress and Failed (another step's
        error, or this step's own) stay as they are; a row this run no longer works on (Succeeded, or taken
        by another run since) is held In Progress for the step alone, and restored when it succeeds."""
        row = self.repo.require(self.control_key)
        if self.holding(row)[0] == "own" and row["last_status"] in ("In Progress", "Failed"):
            return row
        if self.holding(row)[0] == "own" and row["last_status"] == "Queued":
            return self._take("In Progress")
        return self._take("In Progress", self._rerun_marker(step), keep_rows=True)

    def step_succeeded(self, step: str) -> Row:
        row = self.repo.require(self.control_key)
        if row["current_run_id"] != self.run_id:
            return row
        message = row["last_status_message"]
        if row["last_status"] == "In Progress" and message == self._rerun_marker(step):
            return self._outcome(row, "Succeeded", f"{step} re-ran for run {self.run_id}")
        errors = step_errors(message)
        if row["last_status"] != "Failed" or step not in errors:
            return row
        del errors[step]
        return self._outcome(
            row,
            "Failed",
            _compose(errors)
            or (
                f"every failed step of run {self.run_id} has re-run since ({step} last); the row stays Failed "
                f"until finalize of run {self.run_id} succeeds: clear finalize if it is upstream_failed"
            ),
        )

    # -- failures -----------------------------------------------------------------------------------------

    def fail(self, error: str, *, step: str | None = None) -> Row | None:
        """Failed with ``error``; a step's error is kept beside the errors of the run's other failed steps."""
        if step is None:
            return self.repo.fail(self.control_key, self.run_id, error)
        row = self.repo.require(self.control_key)
        if row["current_run_id"] != self.run_id:
            return None
        errors = step_errors(row["last_status_message"]) if row["last_status"] == "Failed" else {}
        errors.pop(step, None)
        errors[step] = _one_line(error)  # the latest failure last
        return self._outcome(row, "Failed", _compose(errors))

    def _outcome(self, row: Row, status: str, message: str) -> Row:
        done = self.repo.record_outcome(
            self.control_key, self.run_id, status=status, message=message, from_status=row["last_status"]
        )
        return done if done is not None else self.repo.require(self.control_key)
