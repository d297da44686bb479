"""Fixtures of the control-database tests."""

from __future__ import annotations

import pytest

from include.dataloader.cli import main


@pytest.fixture
def cli(control_url, capsys):
    """``cli(*argv) -> (exit code, stdout, stderr)`` of ``dataloader --db-url <the test's database> ...``."""

    def run(*argv):
        code = main(["--db-url", control_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
