"""What an operator does to a row from a shell, beyond editing it: load it now (`dataloader run`,
taking over a run whose owner is gone), cancel its current run, reset a failed row.

Each change of state is one guarded transition of the repository; the messages name the row, the state
and the fix. Exceptions carry the exit status of the `dataloader` command.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from include.control.lifecycle import RowLost
from include.control.model import CONFIG_FIELDS, ControlRow, InvalidControlRow
from include.control.repository import ControlRepository
from include.dataloader import run_owner
from include.dataloader.monitors import rest
from include.dataloader.monitors.ports import databricks_run_id
from include.dataloader.redact import describe, redact
from include.dataloader.run_owner import CLI_RUN_PREFIX


class Refused(ValueError):
    """The command was refused (exit status 2)."""


class LoadFailed(RuntimeError):
    """The load ran and failed (exit status 1); the message is the recorded error."""

    exit_status = 1


class LoadStopped(LoadFailed):
    """The load was stopped by a signal (exit status 128 + the signal, as a shell reports it)."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


IN_FLIGHT = ("Queued", "In Progress")


def clear_the_way(repo: ControlRepository, key: str, *, take_over: bool, by: str) -> list[str]:
    """Before a load: refuse an invalid or inactive row (nothing is queued); end a run holding the row whose
    owner is provably gone."""
    current = repo.require(key)
    try:
        ControlRow.from_mapping({k: v for k, v in current.items() if k in CONFIG_FIELDS})
    except InvalidControlRow as exc:  # written around the validation (SQL): the row says what to fix
        raise Refused(
            f"{exc}\nnot loaded: fix the row with `dataloader tables update {key} --set FIELD=VALUE`"
        ) from None
    if not current["is_active"]:
        raise Refused(
            f"{key}: is_active is false, so it is not loaded; switch it on with "
            f"`dataloader tables update {key} --set is_active=true`"
        )
    status, run_id = current["last_status"], current["current_run_id"]
    if status not in IN_FLIGHT:
        return []
    if (run_id or "").startswith(CLI_RUN_PREFIX):
        ended, verdict = run_owner.end_if_gone(repo, key, run_id, by=by, allow_silence=take_over)
        if ended is not None:
            return [f"ended run {run_id}: {verdict.reason}"]
        reason = verdict.reason + ("; --take-over would end it" if verdict.gone else "")
    elif take_over:
        ended, reason = _take_over_airflow_run(repo, key, run_id, by=by)
        if ended:
            return [reason]
    else:
        reason = "an Airflow run holds it"
    raise Refused(
        f"{key}: last_status is {status} for run {run_id} ({reason}); wait for that run, use "
        f"`dataloader run {key} --take-over` if its owner is gone, or `dataloader tables cancel {key}`"
    )


def _take_over_airflow_run(repo: ControlRepository, key: str, run_id: str, *, by: str) -> tuple[bool, str]:
    try:
        airflow = rest.airflow_from_env()
        state = airflow.run_state(key, run_id) if airflow else None
    except httpx.HTTPError as exc:
        return False, f"an Airflow run holds it, and Airflow's API could not be asked: {describe(exc)}"
    if airflow is None:
        return False, "an Airflow run holds it; to check it from here set DATALOADER_AIRFLOW_API_URL"
    if state not in (None, "success", "failed"):
        return False, f"Airflow says that run is {state}"
    what = "does not exist" if state is None else f"ended {state}"
    message = f"Ended: Airflow run {run_id} {what} (seen by {by}); the load's result was not recorded"
    if repo.end_orphaned_run(key, run_id, message) is None:
        return False, "it changed meanwhile"
    return True, f"ended run {run_id}: Airflow run {what}"


def run_load(
    repo: ControlRepository,
    key: str,
    *,
    run_id: str | None,
    take_over: bool,
    warehouse: Path | None,
    who: str,
    note: Callable[[str], None],
) -> str:
    """`dataloader run`: clear the way, load with a heartbeat, and say how it ended; returns the summary JSON.

    :param note: told what was done to clear the way (a dead run ended)."""
    from include.dataloader import runner
    from include.dataloader.engine import local_engine

    for done in clear_the_way(repo, key, take_over=take_over, by=who):
        note(done)
    run_id = run_id or f"{CLI_RUN_PREFIX}{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%f}"
    engine = local_engine(warehouse)
    try:
        with run_owner.stop_on_sigterm(), run_owner.heartbeat(repo, key, run_id):
            summary = runner.run(repo, key, run_id, engine)
    except runner.LoadRefused as exc:
        raise Refused(str(exc)) from exc
    except runner.ControlDbLost as exc:  # exit 2: the control database could not be used
        raise Refused(redact(str(exc))) from exc
    except (KeyboardInterrupt, run_owner.Stopped) as exc:  # say so in the row rather than leave it In Progress
        signum = exc.signum if isinstance(exc, run_owner.Stopped) else signal.SIGINT
        how = f"{signal.Signals(signum).name} ({run_owner.Process.current()})"
        repo.fail(key, run_id, f"Stopped by {how}; the load's result was not recorded, the next run loads again")
        raise LoadStopped(f"{key}: run {run_id} stopped by {how}", 128 + signum) from exc
    except RowLost as exc:  # ended by someone else meanwhile (a cancel, the reconciler): the row says why
        row = repo.get(key) or {}
        raise LoadFailed(
            f"{key}: run {run_id} loaded, but the row was ended meanwhile and its result not recorded: "
            f"{redact(row.get('last_status_message') or 'no message')}; the next run loads again"
        ) from exc
    except Exception as exc:
        row = repo.get(key) or {}
        recorded = row.get("current_run_id") == run_id and row.get("last_status") == "Failed"
        error = row["last_status_message"] if recorded else describe(exc)
        raise LoadFailed(f"{key}: run {run_id} failed: {redact(error or describe(exc))}") from exc
    return json.dumps(summary, sort_keys=True)


def cancel(repo: ControlRepository, key: str, reason: str | None, who: str) -> str:
    current = repo.require(key)
    if current["last_status"] not in IN_FLIGHT:
        raise Refused(
            f"{key}: no run to cancel: last_status is {current['last_status'] or 'empty'} "
            f"(only a Queued or In Progress row has one); see `dataloader tables show {key}`"
        )
    message = f"Cancelled by {who} (dataloader tables cancel)" + (f": {reason}" if reason else "")
    row = repo.cancel_current(key, message)
    if row is None:
        raise Refused(f"{key}: its run ended meanwhile; see `dataloader tables show {key}`")
    run_id = row["current_run_id"]
    notes = [f"cancelled run {run_id} of {key}; the row is Failed"]
    if (run_id or "").startswith(CLI_RUN_PREFIX):
        notes += _stop_cli_process(repo, key, run_id)
    else:
        notes.append(_fail_airflow_run(key, run_id))
    dbx_run = databricks_run_id(row["databricks_run_url"])
    if dbx_run is not None:
        notes.append(_cancel_databricks_run(dbx_run))
    return "\n".join(notes)


def _stop_cli_process(repo: ControlRepository, key: str, run_id: str) -> list[str]:
    process = run_owner.recorded_owner(repo.run_owner(key, run_id))
    if process is None:
        return []
    if not process.is_local():
        return [f"its process ({process}) may still be loading: stop it on {process.host}"]
    if run_owner.is_running(process):
        os.kill(process.pid, signal.SIGTERM)
        return [f"stopped its process ({process})"]
    return []


def _fail_airflow_run(key: str, run_id: str) -> str:
    try:
        airflow = rest.airflow_from_env()
        if airflow is None:
            return (
                f"Airflow run {run_id} not touched: set DATALOADER_AIRFLOW_API_URL (and _USER, _PASSWORD) to fail "
                "it from here, or mark it failed in the Airflow UI"
            )
        failed = airflow.fail_run(key, run_id)
    except httpx.HTTPError as exc:
        return f"Airflow run {run_id} could not be failed ({describe(exc)}): mark it failed in the Airflow UI"
    return f"Airflow run {run_id} {'failed' if failed else 'had already ended'}"


def _cancel_databricks_run(run_id: int) -> str:
    databricks = rest.databricks_from_env()
    if databricks is None:
        return f"Databricks run {run_id} not touched: set DATABRICKS_HOST and DATABRICKS_TOKEN to cancel it from here"
    try:
        databricks.cancel_run(run_id)
    except httpx.HTTPError as exc:
        return f"Databricks run {run_id} could not be cancelled ({describe(exc)}): cancel it in the workspace"
    return f"Databricks run {run_id} cancelled"


def reset(repo: ControlRepository, key: str, who: str) -> str:
    row = repo.reset(key, f"[Reset by {who}]")
    if row is None:
        current = repo.require(key)
        status = current["last_status"]
        fix = f"cancel it first: `dataloader tables cancel {key}`" if status in IN_FLIGHT else "nothing to reset"
        raise Refused(f"{key}: only a Failed row can be reset; last_status is {status or 'empty'}: {fix}")
    return f"reset {key}: ready for its next load, retry count 0"


class VerificationMismatch(LoadFailed):
    """The bronze table differs from its source (exit status 1); the message has the counts."""


def verify(
    repo: ControlRepository,
    key: str,
    *,
    run_id: str | None = None,
    warehouse: Path | None = None,
    artifacts: Path | None = None,
) -> str:
    """`dataloader verify`: the verify task's comparison on the local engine, recorded on the run's history.

    The source's connection is resolved from its dbconfig as `dataloader run` resolves it."""
    from include.dataloader.connections import resolve
    from include.dataloader.engine import default_warehouse_root
    from include.dataloader.verification import default_artifacts_root, local_bronze, run_verification

    target = repo.require(key)["execution_target"] or os.environ.get("DATALOADER_EXECUTION_TARGET", "local")
    if target != "local":
        raise Refused(
            f"{key}: execution_target is {target}: its bronze table is in Unity Catalog, and `dataloader verify` "
            "reads the local warehouse; clear the run's verify task in Airflow (it reads Databricks SQL)"
        )
    root = Path(warehouse).resolve() if warehouse else default_warehouse_root()
    result = run_verification(
        repo,
        key,
        params=resolve,
        bronze=lambda row: local_bronze(row, root),
        artifacts_root=artifacts or default_artifacts_root(root),
        run_id=run_id,
    )
    if result.failures:
        raise VerificationMismatch(result.message())
    return result.message()
