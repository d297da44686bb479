"""Shared, session-scoped setup of the reliability suite: one control database, one source database and one
warehouse for every kill, each case on tables of its own; a fork server that has imported the loader once."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from include.control.repository import ControlRepository
from include.local import postgres

SOURCE_ENV = "RELIABILITY_SOURCE_URL"  # named by the dbconfig (scope env), read by every load


@dataclass
class KillEnv:
    control_url: str
    source_url: str
    warehouse: Path
    markers: Path
    fork: multiprocessing.context.BaseContext
    spark_remote: str

    @property
    def repo(self) -> ControlRepository:
        return ControlRepository(self.control_url, change_source="test")

    def source(self, query: str, params=None) -> list[tuple]:
        with psycopg.connect(self.source_url) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def child_env(self) -> dict[str, str]:
        return {
            "DATALOADER_CONTROL_DB_URL": self.control_url,
            "DATALOADER_WAREHOUSE": str(self.warehouse),
            SOURCE_ENV: self.source_url,
            # the session's Sail server: a child would spend longer starting its own than loading. The
            # stage kills die between Spark calls; the engine kills inside one, which Sail goes on with
            "SPARK_REMOTE": self.spark_remote,
        }


@pytest.fixture(scope="session")
def forkserver():
    """Processes forked from a server that has imported the loader once: each costs its work, not an
    interpreter's start."""
    fork = multiprocessing.get_context("forkserver")
    fork.set_forkserver_preload(["include.dataloader.cli", "include.dataloader.engine", "tests.reliability.kill_child"])
    yield fork
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # the server would otherwise live until pytest exits


@pytest.fixture(scope="session")
def kill_env(pg_url, control_template, tmp_path_factory, forkserver, spark):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS reliability_control WITH (FORCE)")
        conn.execute(
            sql.SQL("CREATE DATABASE reliability_control TEMPLATE {}").format(sql.Identifier(control_template))
        )
    control_url = postgres.database_url(pg_url, "reliability_control")
    source_url = postgres.create_database(pg_url, "reliability_source", replace=True)
    os.environ[SOURCE_ENV] = source_url
    ControlRepository(control_url, change_source="test").upsert_dbconfig(
        "kill_source", "postgresql", {"url": SOURCE_ENV}, "env"
    )
    root = tmp_path_factory.mktemp("kills")
    from include.local import spark as local_spark

    host, port = local_spark._server.listening_address
    yield KillEnv(control_url, source_url, root / "warehouse", root / "markers", forkserver, f"sc://{host}:{port}")
    os.environ.pop(SOURCE_ENV, None)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # dropped, their pages need no shutdown checkpoint
        for name in ("reliability_control", "reliability_source"):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class FaultServer:
    """A PostgreSQL of the faults tests' own (pgserver's binaries), which they stop and start mid-run; the
    session's shared server is never touched. On a unix socket, as the ``pgserver`` user when we are root."""

    def __init__(self, base: Path):
        import pgserver

        self.bin = Path(pgserver.__file__).parent / "pginstall" / "bin"
        self.base, self.data = base, base / "data"
        self.user = None
        if os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            os.chown(base, pwd.getpwnam(self.user).pw_uid, pwd.getpwnam(self.user).pw_gid)
        base.chmod(0o755)
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8")
        self.url = f"postgresql://postgres@/postgres?host={base}"

    def _run(self, tool: str, *args) -> None:
        subprocess.run([self.bin / tool, *args], check=True, capture_output=True, user=self.user)

    def start(self) -> None:
        options = f"-k {self.base} -c listen_addresses='' -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", self.base / "log", "-w", "start")

    def stop(self) -> None:
        """As a restart begins: every session is ended (``fast``), no new one is accepted."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def database(self, name: str) -> str:
        return postgres.create_database(self.url, name, replace=True)


@pytest.fixture(scope="session")
def fault_server():
    base = Path(tempfile.mkdtemp(prefix="reliability-faults-"))
    server = FaultServer(base)
    server.start()
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):
        server.stop()
    shutil.rmtree(base, ignore_errors=True)
