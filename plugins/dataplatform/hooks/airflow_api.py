"""Airflow's own public REST API (v2), for tasks that change other DAG runs: in Airflow 3 a task may not
touch the metadata database directly."""

from __future__ import annotations

from functools import cached_property
from urllib.parse import quote

import httpx
from airflow.sdk import BaseHook

DAG_RUN = "/api/v2/dags/{dag_id}/dagRuns/{run_id}"
DAG_RUNS = "/api/v2/dags/{dag_id}/dagRuns"
TOKEN = "/auth/token"


class AirflowApiHook(BaseHook):
    """:param airflow_api_conn_id: an http connection: host = the API server's URL, login and password of a
        user allowed to edit DAG runs (a token is requested from ``/auth/token``).
    :param client: an httpx client to use as is (tests pass one bound to the API app)."""

    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = "airflow_api"
    conn_type = "http"
    hook_name = "Airflow REST API"

    def __init__(self, airflow_api_conn_id: str = default_conn_name, *, client: httpx.Client | None = None):
        super().__init__()
        self.airflow_api_conn_id = airflow_api_conn_id
        self._client = client

    @cached_property
    def client(self) -> httpx.Client:
        if self._client is not None:
            return self._client
        conn = self.get_connection(self.airflow_api_conn_id)
        base = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'http'}://{conn.host}"
        if conn.port:
            base = f"{base}:{conn.port}"
        client = httpx.Client(base_url=base, timeout=30)
        if conn.login:
            answer = client.post(TOKEN, json={"username": conn.login, "password": conn.password})
            answer.raise_for_status()
            client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return client

    @staticmethod
    def _run_path(dag_id: str, run_id: str) -> str:
        return DAG_RUN.format(dag_id=quote(dag_id, safe=""), run_id=quote(run_id, safe=""))

    def fail_run(self, dag_id: str, run_id: str) -> bool:
        response = self.client.patch(self._run_path(dag_id, run_id), json={"state": "failed"})
        if response.status_code in (404, 409):
            self.log.info("DAG run %s/%s not failed: %s", dag_id, run_id, response.text)
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
