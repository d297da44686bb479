"""Fixtures for running DAGs in-process with dag.test()."""

from __future__ import annotations

import json

import pytest
from psycopg.conninfo import conninfo_to_dict


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's own metadata database (SQLite in the test AIRFLOW_HOME), migrated once."""
    from airflow.utils import db

    db.initdb()


def airflow_conn_json(url: str, conn_type: str = "postgres") -> str:
    """An Airflow connection (JSON form, as in AIRFLOW_CONN_*) for a libpq URL."""
    params = conninfo_to_dict(url)
    return json.dumps(
        {
            "conn_type": conn_type,
            "host": params.get("host"),
            "port": int(params["port"]) if params.get("port") else None,
            "schema": params.get("dbname"),
            "login": params.get("user"),
            "password": params.get("password") or None,
        }
    )


@pytest.fixture
def control_connection(control_url, monkeypatch):
    """The test's control database served to Airflow as the connection ``dataloader_control``."""
    monkeypatch.setenv("AIRFLOW_CONN_DATALOADER_CONTROL", airflow_conn_json(control_url))
    return control_url
