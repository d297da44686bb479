"""Airflow DAG: keeps the control snapshot (read by the loader DAG files at parse time) up to date.

(Airflow's DAG discovery skips files that do not mention both "airflow" and "dag".)
"""

from dataplatform.factories.snapshot import build_snapshot_dag

dag = build_snapshot_dag()
