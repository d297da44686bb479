"""Airflow's REST API and Databricks' Jobs API without Airflow: the ports of ``ports.py`` for the
``dataloader`` command, configured from the environment and used only when configured.

    DATALOADER_AIRFLOW_API_URL                 the API server, e.g. https://airflow.example.internal
    DATALOADER_AIRFLOW_API_USER / _PASSWORD    a user allowed to edit DAG runs (a token from /auth/token)
    DATABRICKS_HOST / DATABRICKS_TOKEN         the workspace URL and a token (the Databricks CLI's names)

Inside Airflow the hooks (``dataplatform.hooks.airflow_api``, the Databricks provider) do the same from
Airflow connections.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

import httpx

DAG_RUN = "/api/v2/dags/{dag_id}/dagRuns/{run_id}"
DAG_RUNS = "/api/v2/dags/{dag_id}/dagRuns"
TOKEN = "/auth/token"
RUNS_CANCEL = "/api/2.1/jobs/runs/cancel"
TIMEOUT_SECONDS = 30


class AirflowRest:
    """Airflow's public REST API (v2): the ``AirflowRuns`` port.

    :param client: an httpx client on the API server (authenticated)."""

    def __init__(self, client: httpx.Client):
        self.client = client

    @classmethod
    def login(cls, url: str, user: str | None, password: str | None) -> AirflowRest:
        """A client on ``url``; with a user, authenticated by a token from ``/auth/token``."""
        client = httpx.Client(base_url=url, timeout=TIMEOUT_SECONDS)
        if user:
            answer = client.post(TOKEN, json={"username": user, "password": password})
            answer.raise_for_status()
            client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return cls(client)

    @staticmethod
    def _run_path(dag_id: str, run_id: str) -> str:
        return DAG_RUN.format(dag_id=quote(dag_id, safe=""), run_id=quote(run_id, safe=""))

    def fail_run(self, dag_id: str, run_id: str) -> bool:
        response = self.client.patch(self._run_path(dag_id, run_id), json={"state": "failed"})
        if response.status_code in (404, 409):
            return False
        response.raise_for_status()
        return True

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        response = self.client.get(self._run_path(dag_id, run_id))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["state"]

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        response = self.client.post(
            DAG_RUNS.format(dag_id=quote(dag_id, safe="")), json={"logical_date": None, "conf": conf or {}}
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]


class DatabricksRest:
    def __init__(self, client: httpx.Client):
        self.client = client

    @classmethod
    def connect(cls, host: str, token: str) -> DatabricksRest:
        base = host if "://" in host else f"https://{host}"
        return cls(httpx.Client(base_url=base, timeout=TIMEOUT_SECONDS, headers={"Authorization": f"Bearer {token}"}))

    def cancel_run(self, run_id: int) -> None:
        self.client.post(RUNS_CANCEL, json={"run_id": run_id}).raise_for_status()


def airflow_from_env(env: Mapping[str, str] = os.environ) -> AirflowRest | None:
    url = env.get("DATALOADER_AIRFLOW_API_URL")
    if not url:
        return None
    return AirflowRest.login(url, env.get("DATALOADER_AIRFLOW_API_USER"), env.get("DATALOADER_AIRFLOW_API_PASSWORD"))


def databricks_from_env(env: Mapping[str, str] = os.environ) -> DatabricksRest | None:
    host, token = env.get("DATABRICKS_HOST"), env.get("DATABRICKS_TOKEN")
    return DatabricksRest.connect(host, token) if host and token else None
