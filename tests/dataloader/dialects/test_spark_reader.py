"""The exact options Spark's JDBC / Snowflake reader gets on Databricks (no such database runs here)."""

import pytest

from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.readers import Partitioning, SparkSourceReader

PARAMS = ConnectionParams(host="db.example.internal", port=None, database="SALES", user="loader", password="s3cret")

URLS = {
    "sqlserver": (
        "jdbc:sqlserver://db.example.internal:1433;databaseName=SALES;encrypt=true;trustServerCertificate=false",
        "com.microsoft.sqlserver.jdbc.SQLServerDriver",
    ),
    "oracle": ("jdbc:oracle:thin:@//db.example.internal:1521/SALES", "oracle.jdbc.OracleDriver"),
    "postgresql": ("jdbc:postgresql://db.example.internal:5432/SALES", "org.postgresql.Driver"),
    "clickhouse": ("jdbc:clickhouse://db.example.internal:8123/SALES", "com.clickhouse.jdbc.ClickHouseDriver"),
}


@pytest.mark.parametrize("db_type", sorted(URLS))
def test_jdbc_options(db_type):
    reader = SparkSourceReader(None, dialect_for(db_type), PARAMS)
    url, driver = URLS[db_type]
    assert reader.options("SELECT 1") == {
        "url": url,
        "driver": driver,
        "fetchsize": "10000",
        "user": "loader",
        "password": "s3cret",
        "query": "SELECT 1",
    }


def test_partitioned_jdbc_read_uses_a_derived_table():
    reader = SparkSourceReader(None, dialect_for("oracle"), PARAMS, fetch_size=50_000)
    options = reader.options('SELECT "ID" FROM "T"', Partitioning("ID", 1, 1_000_000, 8))
    assert "query" not in options  # Spark refuses query together with partitionColumn
    assert {
        k: options[k] for k in ("dbtable", "partitionColumn", "lowerBound", "upperBound", "numPartitions", "fetchsize")
    } == {
        "dbtable": '(SELECT "ID" FROM "T") src',
        "partitionColumn": "ID",
        "lowerBound": "1",
        "upperBound": "1000000",
        "numPartitions": "8",
        "fetchsize": "50000",
    }


def test_snowflake_uses_the_spark_connector():
    params = ConnectionParams(
        host="acme.snowflakecomputing.com",
        database="RAW",
        user="loader",
        password="pw",
        options={"warehouse": "LOAD_WH", "schema": "SALES", "role": "LOADER"},
    )
    reader = SparkSourceReader(None, dialect_for("snowflake"), params)
    assert reader.dialect.spark_format == "snowflake"
    assert reader.options("SELECT 1") == {
        "sfUrl": "acme.snowflakecomputing.com",
        "sfDatabase": "RAW",
        "sfSchema": "SALES",
        "sfWarehouse": "LOAD_WH",
        "sfRole": "LOADER",
        "sfUser": "loader",
        "sfPassword": "pw",
        "query": "SELECT 1",
    }


def test_connection_params_never_show_the_password():
    assert "s3cret" not in repr(PARAMS)
