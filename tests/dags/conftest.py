"""Fixtures for running DAGs in-process with dag.test()."""

from __future__ import annotations

import pytest

from tests.conftest import airflow_conn_json


@pytest.fixture
def loader_env(control_connection, repo, source_url, tmp_path, monkeypatch):
    """Everything a loader DAG needs: the control DB and the source as Airflow connections, the source's
    dbconfig (secret from an env variable), a warehouse, a snapshot path, no deadline (see FACTS.md)."""
    from include.control import snapshot

    monkeypatch.setenv("AIRFLOW_CONN_TEST_SOURCE", airflow_conn_json(source_url))
    monkeypatch.setenv("TEST_SOURCE_URL", source_url)
    monkeypatch.setenv("DATALOADER_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv(snapshot.SNAPSHOT_PATH_ENV, str(tmp_path / "snapshot.json"))
    monkeypatch.setenv("DATALOADER_DEADLINE_ALERTS", "off")
    monkeypatch.setenv("DATALOADER_RETRIES", "0")
    monkeypatch.setenv("DATALOADER_CHANGE_POLL_SECONDS", "1")
    repo.upsert_dbconfig("test_source", "postgresql", {"url": "TEST_SOURCE_URL"}, "env")
    return tmp_path


@pytest.fixture
def loader_dag(loader_env, repo):
    """``loader_dag(control_key)``: writes the snapshot of the control table, returns that row's DAG."""
    from dataplatform.factories.loader import loader_dags_from_snapshot
    from include.control import snapshot

    def build(control_key: str):
        snapshot.write(snapshot.default_path(), repo.list())
        return loader_dags_from_snapshot(only=control_key)[control_key]

    return build


ORDERS = {
    "incremental_column": "updated_at",
    "incremental_type": "timestamp",
    "primary_key_columns": ["order_id"],
}


@pytest.fixture
def orders(source_sql):
    """A 12-row orders table at the source, one row every 6 hours from 2024-01-01 06:00."""
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, status text, updated_at timestamp)")
    source_sql(
        "INSERT INTO orders SELECT g, 'new', timestamp '2024-01-01' + g * interval '6 hours' "
        "FROM generate_series(1, 12) g"
    )
    return "orders"


def tasks(run):
    return {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
