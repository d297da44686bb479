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
    from pysail.spark import SparkConnectServer

    os.environ.setdefault("RUST_LOG", "error")  # Sail logs every aborted task at shutdown as a warning
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
