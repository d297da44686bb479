"""What a first start needs is declared, and everything declared is used (no Airflow stack needed)."""

import importlib.util
import os
import re
import tempfile
from pathlib import Path

import yaml

from dataplatform.factories.loader import LoaderSettings
from dataplatform.hooks.airflow_api import AirflowApiHook
from dataplatform.hooks.control import ControlDatabaseHook
from tests.conftest import ROOT

SETTINGS = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())["airflow"]
CONNECTIONS = {c["conn_id"]: c for c in SETTINGS["connections"]}


def pinned(requirements: str) -> set[str]:
    lines = (ROOT / requirements).read_text().splitlines()
    return {re.split(r"[=\[]", line)[0].lower() for line in lines if line and not line.startswith(("#", "-r"))}


SOURCE_CONN_TYPES = {"postgresql": "postgres", "clickhouse": "generic"}  # ClickHouse: the loader's own driver


def test_every_connection_the_code_uses_by_default_is_declared_with_its_type():
    demo_dbconfigs = yaml.safe_load((ROOT / "include/demo/control_tables.yaml").read_text())["dbconfigs"]
    expected = {
        ControlDatabaseHook.default_conn_name: ControlDatabaseHook.conn_type,
        AirflowApiHook.default_conn_name: AirflowApiHook.conn_type,
        LoaderSettings().databricks_conn_id: "databricks",
        **{d["db_config_key"]: SOURCE_CONN_TYPES[d["db_type"]] for d in demo_dbconfigs},
    }
    assert {k: c["conn_type"] for k, c in CONNECTIONS.items()} == expected


def test_each_connection_type_comes_from_a_provider_in_requirements_txt():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hooks = ProvidersManagerTaskRuntime().hooks
    for conn in CONNECTIONS.values():
        assert conn["conn_type"] in hooks, f"no installed provider registers the type of {conn['conn_id']}"
    assert {"apache-airflow-providers-http", "apache-airflow-providers-postgres"} <= pinned("requirements.txt")


def test_the_local_control_database_needs_no_tls():
    assert "sslmode" not in (CONNECTIONS["dataloader_control"]["conn_extra"] or {})


def test_the_pools_are_the_ones_the_tasks_use_and_no_variable_is_declared():
    assert {p["pool_name"] for p in SETTINGS["pools"]} == {LoaderSettings().pool, "sentinel_compare"}
    assert SETTINGS["variables"] == []  # the package's settings are environment variables


def test_the_image_gets_the_local_targets_delta_library():
    assert "deltalake" in pinned("requirements.txt")
    assert "-r /requirements.txt" in (ROOT / "Dockerfile").read_text()


def test_a_bundle_of_the_whole_repository_parses_only_the_dag_files():
    from airflow.utils.file import find_dag_file_paths

    found = {str(Path(p).relative_to(ROOT)) for p in find_dag_file_paths(ROOT, safe_mode=False)}
    assert found == {str(p.relative_to(ROOT)) for p in (ROOT / "dags").glob("*.py")}


def test_importing_the_test_conftest_as_a_dag_processor_would_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where an import-time mkdtemp would land
    monkeypatch.setattr(tempfile, "tempdir", None)
    home = os.environ["AIRFLOW_HOME"]
    spec = importlib.util.spec_from_file_location("unusual_module_name", ROOT / "tests" / "conftest.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

    assert list(tmp_path.iterdir()) == []
    assert os.environ["AIRFLOW_HOME"] == home
