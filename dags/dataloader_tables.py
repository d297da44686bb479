"""Airflow DAGs: one loader DAG per active control row, built from the control snapshot.

The snapshot is a file written every minute by the ``dataloader_control_snapshot`` DAG; this file never
queries the database. When a task runs, only its own DAG is built.
"""

from airflow.sdk import get_parsing_context

from dataplatform.factories.loader import loader_dags_from_snapshot

globals().update(loader_dags_from_snapshot(only=get_parsing_context().dag_id))
