"""Airflow DAG: keeps the control snapshot (read by the loader DAG files at parse time) up to date.

(Airflow's DAG discovery skips files that do not mention both "airflow" and "dag".)
"""

import sys
from pathlib import Path

# This checkout's include/ and plugins/ come first: a DAG bundle's parse and tasks run the code versioned
# with this file (Airflow appends the bundle to sys.path, after the image's copy).
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(_ROOT), str(_ROOT / "plugins")) if p not in sys.path[:2]]

from dataplatform.factories.snapshot import build_snapshot_dag

dag = build_snapshot_dag()
