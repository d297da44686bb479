"""Debian's PostgreSQL (it links ICU), for collation tests and the collation benchmark: pgserver's
PostgreSQL 16 build has no ICU (only the libc C, POSIX and C.UTF-8 collations)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

DEBIAN_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def start_icu_server(base: Path, *, shared_buffers: str = "64MB"):
    """Debian's PostgreSQL on a unix socket in ``base`` (run as the ``pgserver`` user when we are root, as
    pgserver itself does); returns (server URL, stop)."""
    bin_dir = DEBIAN_BIN[-1].parent
    user = None
    if os.geteuid() == 0:
        from pgserver.utils import ensure_user_exists

        user = "pgserver"
        ensure_user_exists(user)
        os.chown(base, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    base.chmod(0o755)
    data = base / "data"
    run = lambda *args: subprocess.run(args, check=True, capture_output=True, user=user)  # noqa: E731
    run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
    options = f"-k {base} -c listen_addresses='' -c fsync=off -c shared_buffers={shared_buffers}"
    run(bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", base / "log", "-w", "start")
    return f"postgresql://postgres@/postgres?host={base}", lambda: run(
        bin_dir / "pg_ctl", "-D", data, "-m", "fast", "stop"
    )
