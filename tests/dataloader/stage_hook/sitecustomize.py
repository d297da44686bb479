"""Tests only: stop a `dataloader run` process at a named stage, so that a test can kill it there.

Put this folder first on PYTHONPATH of the process and set ``DATALOADER_TEST_BLOCK_AT`` to
``extraction`` (the source table's rows are about to be read) or ``merge`` (the merge into the target
is about to run). On reaching the stage the process writes the stage's name to the file
``DATALOADER_TEST_BLOCK_SIGNAL`` and blocks until the file ``<signal>.release`` exists (the test's
go-ahead), if ever. Python imports ``sitecustomize`` at startup.
"""

import os
import threading
from pathlib import Path

STAGE = os.environ.get("DATALOADER_TEST_BLOCK_AT")


def _block(stage: str) -> None:
    signal = Path(os.environ["DATALOADER_TEST_BLOCK_SIGNAL"])
    signal.with_suffix(".tmp").write_text(stage)
    signal.with_suffix(".tmp").rename(signal)  # the test sees the whole file or none
    release = signal.with_suffix(".release")
    while not release.exists():
        threading.Event().wait(0.1)  # a signal handler (SIGTERM) runs in between


if STAGE == "extraction":
    from include.dataloader import readers

    _read = readers.ArrowSourceReader.read

    def read(self, query, partitioning=None):
        if "information_schema" not in query.lower():  # the catalog query comes first
            _block("extraction")
        return _read(self, query, partitioning)

    readers.ArrowSourceReader.read = read
elif STAGE == "merge":
    from include.dataloader import target

    _merge = target.LocalWarehouse.merge

    def merge(self, *args, **kwargs):
        _block("merge")
        return _merge(self, *args, **kwargs)

    target.LocalWarehouse.merge = merge
