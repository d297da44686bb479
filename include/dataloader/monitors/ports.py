"""What the monitors need from the outside world, as protocols (Airflow's REST API, Databricks' Jobs API,
a way to page someone). The Airflow side implements them; tests can too."""

from __future__ import annotations

import re
from typing import Protocol


class AirflowRuns(Protocol):
    def fail_run(self, dag_id: str, run_id: str) -> bool:
        """Mark a DAG run failed; False when it does not exist or already ended."""

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The run's state (queued, running, success, failed), None when it does not exist."""

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Start a run now; returns its run id."""


class DatabricksRuns(Protocol):
    def cancel_run(self, run_id: int) -> None: ...


class Pager(Protocol):
    def page(self, target: str | None, title: str, text: str, control_key: str) -> None: ...


def databricks_run_id(run_page_url: str | None) -> int | None:
    """The run id at the end of a Databricks run page URL (``...#job/<job>/run/<run>``)."""
    match = re.search(r"/run/(\d+)\D*$", run_page_url or "")
    return int(match[1]) if match else None
