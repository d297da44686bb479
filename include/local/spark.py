"""The local Spark engine: Sail, a Spark Connect server in Rust, started in-process (no JVM)."""

from __future__ import annotations

import atexit
import logging
import os
import warnings

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

_server = None
_session: SparkSession | None = None


def _start_server() -> str:
    global _server
    os.environ.setdefault("RUST_LOG", "error")  # Sail logs every aborted task at shutdown as a warning
    # Sail's allocator (mimalloc, which reads this when pysail is loaded) returns freed memory to the system
    # at once, not after a delay that its idle threads never reach: else what one step used stays resident
    # under the next, e.g. under delta-rs's merge (a 1M-row merge into 20M: peak 1,596 MB, 1,168-1,285 MB
    # with this; bench/RESULTS.md)
    os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")
    from pysail.spark import SparkConnectServer

    _server = SparkConnectServer(ip="127.0.0.1", port=0)
    _server.start(background=True)
    host, port = _server.listening_address
    log.info("started Sail Spark Connect server on %s:%s", host, port)
    return f"sc://{host}:{port}"


def _shutdown() -> None:
    # Runs before pyspark's own exit hook (atexit is last-in, first-out), which would otherwise retry
    # for minutes against a server that is already gone.
    if _session is not None:
        _session.stop()
    if _server is not None:
        _server.stop()


def session() -> SparkSession:
    """A Spark Connect session on the in-process Sail server (started on first use), in UTC.

    ``$SPARK_REMOTE`` (``sc://host:port``) points at another Spark Connect server instead.
    """
    global _session
    if _session is None:
        remote = os.environ.get("SPARK_REMOTE") or _start_server()
        with warnings.catch_warnings():
            # pyspark-client warns about pandas 3, which it uses only for toPandas()
            warnings.simplefilter("ignore", FutureWarning)
            _session = SparkSession.builder.remote(remote).getOrCreate()
        _session.conf.set("spark.sql.session.timeZone", "UTC")
        atexit.register(_shutdown)
    return _session
