"""Who runs a ``dataloader run`` (host, process id, process start time), its heartbeat, and whether its
owner is provably gone.

A run from a shell is nobody's in Airflow: when its process dies (SIGKILL, a closed laptop, a lost
pod) the row would say In Progress until the long-running monitor acts hours later. The run records its
owner when it is queued (session settings read by column defaults, migration 0005) and beats while it
loads, so that the same host can see its process is gone, and any host can see it has gone silent.
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from include.control.repository import ControlRepository

log = logging.getLogger(__name__)

CLI_RUN_PREFIX = "cli__"
HEARTBEAT_SECONDS_ENV = "DATALOADER_HEARTBEAT_SECONDS"
SILENT_LIMIT_ENV = "DATALOADER_CLI_SILENT_MINUTES"
# a process start time read twice can differ by a clock tick; a reused pid starts seconds later at least
_START_TOLERANCE = timedelta(seconds=1)


def heartbeat_seconds() -> float:
    return float(os.environ.get(HEARTBEAT_SECONDS_ENV) or 30)


def silent_limit() -> timedelta:
    """How long a CLI run may go without a heartbeat before any host may end it (10 missed beats)."""
    return timedelta(minutes=float(os.environ.get(SILENT_LIMIT_ENV) or 5))


def operator() -> str:
    """``user@host``: who ran a command, for the change history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container with an arbitrary uid)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Process:
    host: str
    pid: int
    started: datetime  # tells a pid reused by a later process apart
    # Two containers can share a host name (host networking) but not their pids: a pid is looked up
    # only in the pid namespace it was recorded in (None: not Linux, the host name decides).
    pid_namespace: int | None = None

    @classmethod
    def current(cls) -> Process:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_started(pid), pid_namespace())

    def settings(self) -> dict[str, str]:
        """The session settings that record this process as the owner of the runs it queues."""
        values = {"run_host": self.host, "run_pid": str(self.pid), "run_process_started": self.started.isoformat()}
        if self.pid_namespace is not None:
            values["run_pid_namespace"] = str(self.pid_namespace)
        return values

    def is_local(self) -> bool:
        """Whether this process's pid can be looked up here: same host, same pid namespace."""
        namespaces = {self.pid_namespace, pid_namespace()}
        return self.host == socket.gethostname() and (None in namespaces or len(namespaces) == 1)

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host}"


def pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def process_started(pid: int) -> datetime:
    """When process ``pid`` (on this host) started."""
    return datetime.fromtimestamp(psutil.Process(pid).create_time(), UTC)


def is_running(process: Process) -> bool:
    """Whether ``process`` (on this host) still runs: its pid exists and belongs to the same process."""
    try:
        return abs(process_started(process.pid) - process.started) <= _START_TOLERANCE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def recorded_owner(owner: Mapping[str, Any] | None) -> Process | None:
    if not owner or owner.get("run_pid") is None or not owner.get("run_host") or not owner.get("run_process_started"):
        return None
    return Process(owner["run_host"], owner["run_pid"], owner["run_process_started"], owner.get("run_pid_namespace"))


@dataclass(frozen=True)
class Verdict:
    """Whether a CLI run's owner is gone, and the proof: its process (``by_process``) or its silence."""

    gone: bool
    reason: str
    by_process: bool = False


def judge(owner: Mapping[str, Any] | None, *, silent_limit: timedelta) -> Verdict:
    """Is the owner of a CLI run gone? On its own host the process answers; elsewhere only its silence
    (no heartbeat for ``silent_limit``) does."""
    process = recorded_owner(owner)
    if process is not None and process.is_local():
        if is_running(process):
            return Verdict(False, f"its process ({process}) is still running")
        return Verdict(True, f"its process ({process}) is no longer running", by_process=True)
    silent = (owner or {}).get("silent_for")
    where = f" ({process})" if process else ""
    if silent is not None and silent > silent_limit:
        return Verdict(True, f"it has sent no heartbeat for {_minutes(silent)}{where}")
    heard = f"its last heartbeat was {_minutes(silent)} ago" if silent is not None else "it has no run record"
    return Verdict(False, f"{heard}{where}, under the {_minutes(silent_limit)} limit")


def end_if_gone(
    repo: ControlRepository,
    control_key: str,
    run_id: str,
    *,
    by: str,
    allow_silence: bool = True,
    limit: timedelta | None = None,
) -> tuple[dict | None, Verdict]:
    """End CLI run ``run_id`` of the row when its owner is provably gone; returns the ended row (or None)
    and the verdict. ``allow_silence=False``: only a process seen gone on this host counts."""
    limit = limit or silent_limit()
    verdict = judge(repo.run_owner(control_key, run_id), silent_limit=limit)
    if not verdict.gone or (not verdict.by_process and not allow_silence):
        return None, verdict
    message = (
        f"Ended: dataloader run {run_id} is gone: {verdict.reason} (seen by {by}); "
        "the load's result was not recorded, the next run loads again"
    )
    ended = repo.end_orphaned_run(control_key, run_id, message, silent_for=None if verdict.by_process else limit)
    if ended is not None:
        log.warning("%s: %s", control_key, message)
    return ended, verdict


@contextmanager
def heartbeat(repo: ControlRepository, control_key: str, run_id: str, *, every: float | None = None) -> Iterator[None]:
    """Beat for ``run_id`` every ``every`` seconds while the block runs (a daemon thread)."""
    stop = threading.Event()
    every = every or heartbeat_seconds()

    def beat() -> None:
        while not stop.wait(every):
            try:
                repo.beat(control_key, run_id)
            except Exception as exc:  # a missed beat is not a failed load; silence is what others judge
                log.warning("%s: heartbeat of run %s not recorded: %s", control_key, run_id, type(exc).__name__)

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


class Stopped(BaseException):  # like KeyboardInterrupt: the load's `except Exception` lets it through
    """The process was told to stop (SIGTERM: `tables cancel`, a pod eviction, systemd)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises ``Stopped`` in the block, so that the run can say so before the process ends."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signals
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
