"""Airflow DAGs: the monitors around the loads (stuck, long-running, failed, landed) and the reconciler."""

from dataplatform.factories.monitors import build_monitor_dags

globals().update(build_monitor_dags())
