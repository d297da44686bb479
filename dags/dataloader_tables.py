"""Airflow DAGs: one loader DAG per active control row, built from the control snapshot.

The snapshot is a file written every minute by the ``dataloader_control_snapshot`` DAG; this file never
queries the database. When a task runs, only its own DAG is built.
"""

import sys
from pathlib import Path

# This checkout's include/ and plugins/ come first: a DAG bundle's parse and tasks run the code versioned
# with this file (Airflow appends the bundle to sys.path, after the image's copy).
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(_ROOT), str(_ROOT / "plugins")) if p not in sys.path[:2]]

from airflow.sdk import get_parsing_context

from dataplatform.factories.loader import loader_dags_from_snapshot

globals().update(loader_dags_from_snapshot(only=get_parsing_context().dag_id))
