"""In Airflow a source is the Airflow connection named by its db_config_key."""

import json

import pytest

from dataplatform.hooks.source import SourceConnectionMissing, source_params


def test_a_connection_becomes_connection_params_with_its_extra_as_options(monkeypatch):
    conn = {
        "conn_type": "snowflake",
        "host": "xy12345.snowflakecomputing.com",
        "port": 443,
        "schema": "SALES",
        "login": "LOADER",
        "password": "canary-s3cret",
        "extra": {"warehouse": "LOAD_WH", "role": "LOADER", "ignored": {"nested": 1}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SALES_SNOWFLAKE", json.dumps(conn))

    params = source_params("sales_snowflake")

    assert (params.host, params.port, params.database, params.user, params.password) == (
        "xy12345.snowflakecomputing.com",
        443,
        "SALES",
        "LOADER",
        "canary-s3cret",
    )
    assert params.options == {"warehouse": "LOAD_WH", "role": "LOADER"}
    assert "canary-s3cret" not in repr(params)


def test_a_url_in_the_extra_is_the_whole_connection(monkeypatch):
    conn = {"conn_type": "generic", "extra": {"url": "chdb:///var/lib/demo-clickhouse", "secure": False}}
    monkeypatch.setenv("AIRFLOW_CONN_DEMO_CLICKHOUSE", json.dumps(conn))

    params = source_params("demo_clickhouse")

    assert (params.url, params.host, params.options) == ("chdb:///var/lib/demo-clickhouse", None, {"secure": False})


def test_a_missing_connection_names_the_connection_and_how_to_add_it():
    with pytest.raises(
        SourceConnectionMissing, match=r"no Airflow connection 'sales_nowhere'.*AIRFLOW_CONN_SALES_NOWHERE"
    ):
        source_params("sales_nowhere")
