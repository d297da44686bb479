"""Fixtures of the control-database tests."""

from __future__ import annotations

import pytest

from tests.control.helpers import dataloader_cli


@pytest.fixture
def cli(control_url, capsys):
    """``cli(*argv) -> (exit code, stdout, stderr)`` of ``dataloader --db-url <the test's database> ...``."""
    return dataloader_cli(control_url, capsys)
