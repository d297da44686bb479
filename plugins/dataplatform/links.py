"""Links an operator can follow: the Airflow UI pages of a run."""

from __future__ import annotations

from urllib.parse import quote

from airflow.sdk import conf


def airflow_base_url() -> str:
    return conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")


def airflow_dag_url(dag_id: str) -> str:
    return f"{airflow_base_url()}/dags/{quote(dag_id)}"


def airflow_run_url(dag_id: str, run_id: str) -> str:
    return f"{airflow_dag_url(dag_id)}/runs/{quote(run_id, safe='')}"
