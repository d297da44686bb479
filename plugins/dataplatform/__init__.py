"""The Airflow-facing side of the package: hooks, operators, triggers, notifiers and DAG factories.

Laid out like an Airflow provider. The libraries it drives live in ``include/`` and never import Airflow.
"""
