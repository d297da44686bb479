"""Airflow's own public REST API (v2), for tasks that change other DAG runs: in Airflow 3 a task may not
touch the metadata database directly. The calls are ``include.dataloader.monitors.rest.AirflowRest``,
shared with the ``dataloader`` command; this hook only finds the server and the user in a connection."""

from __future__ import annotations

from functools import cached_property

import httpx
from airflow.sdk import BaseHook

from include.dataloader.monitors.rest import AirflowRest


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
    def api(self) -> AirflowRest:
        if self._client is not None:
            return AirflowRest(self._client)
        conn = self.get_connection(self.airflow_api_conn_id)
        base = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'http'}://{conn.host}"
        if conn.port:
            base = f"{base}:{conn.port}"
        return AirflowRest.login(base, conn.login, conn.password)

    @property
    def client(self) -> httpx.Client:
        return self.api.client

    def fail_run(self, dag_id: str, run_id: str) -> bool:
        failed = self.api.fail_run(dag_id, run_id)
        if not failed:
            self.log.info("DAG run %s/%s not failed: it does not exist or has ended", dag_id, run_id)
        return failed

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        return self.api.run_state(dag_id, run_id)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        return self.api.trigger(dag_id, conf)
