"""Airflow DAGs: one DB Sentinel comparison DAG per config file in include/sentinel/configs/."""

from dataplatform.factories.sentinel import sentinel_dags

globals().update(sentinel_dags())
