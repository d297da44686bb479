"""Where each side's connection settings come from, and exactly what each driver is called with.

SQL Server, Oracle, Snowflake and ClickHouse servers cannot run here: their drivers' ``connect`` is replaced
by a recorder. PostgreSQL is real, including through an Airflow connection.
"""

import json
import sys
import types

import oracledb
import pymssql
import pytest
import yaml
from clickhouse_connect import dbapi
from psycopg.conninfo import conninfo_to_dict

from include.sentinel.cli import main
from include.sentinel.config import ConfigError, Database
from include.sentinel.connect import connector
from tests.sentinel.conftest import drift

AIRFLOW_CONN = {
    "conn_type": "mssql",
    "host": "dr.example",
    "port": 1444,
    "login": "sentinel",
    "password": "canary-s3cret!x",
}


def test_settings_come_from_the_airflow_connection_and_the_file_wins(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SENTINEL_DR", json.dumps(AIRFLOW_CONN | {"schema": "sales"}))
    database = Database(db_type="sqlserver", conn_id="sentinel_dr", database="sales_dr")
    assert database.settings() == {
        "host": "dr.example",
        "port": 1444,
        "database": "sales_dr",
        "username": "sentinel",
        "password": "canary-s3cret!x",
    }


def test_a_missing_connection_or_variable_is_named(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    with pytest.raises(ConfigError, match="conn_id 'nowhere': cannot read the Airflow connection"):
        Database(db_type="oracle", conn_id="nowhere").settings()
    monkeypatch.delenv("DR_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"set the environment variable DR_PASSWORD \(password_env\)"):
        Database(db_type="oracle", host="h", password_env="DR_PASSWORD").settings()


@pytest.fixture
def calls(monkeypatch):
    recorded = []

    def recorder(name):
        return lambda *args, **kwargs: recorded.append((name, args, kwargs))

    monkeypatch.setattr(pymssql, "connect", recorder("pymssql"))
    monkeypatch.setattr(oracledb, "connect", recorder("oracledb"))
    monkeypatch.setattr(dbapi, "connect", recorder("clickhouse_connect"))
    snowflake = types.ModuleType("snowflake")
    snowflake.connector = types.SimpleNamespace(connect=recorder("snowflake"))
    monkeypatch.setitem(sys.modules, "snowflake", snowflake)
    monkeypatch.setitem(sys.modules, "snowflake.connector", snowflake.connector)
    monkeypatch.setenv("DR_PASSWORD", "canary-pw")
    return recorded


@pytest.mark.parametrize(
    ("database", "call"),
    [
        (
            Database(db_type="sqlserver", host="sql1", database="sales", username="u", password_env="DR_PASSWORD"),
            (
                "pymssql",
                (),
                {
                    "server": "sql1",
                    "port": "1433",
                    "user": "u",
                    "password": "canary-pw",
                    "database": "sales",
                    "autocommit": True,
                },
            ),
        ),
        (
            Database(db_type="oracle", host="ora", database="ORCLPDB1", username="u", password_env="DR_PASSWORD"),
            ("oracledb", (), {"user": "u", "password": "canary-pw", "dsn": "ora:1521/ORCLPDB1"}),
        ),
        (
            Database(db_type="clickhouse", host="ch", port=8443, database="sales", extra={"secure": True}),
            (
                "clickhouse_connect",
                (),
                {
                    "host": "ch",
                    "port": 8443,
                    "username": "default",
                    "password": "",
                    "database": "sales",
                    "secure": True,
                },
            ),
        ),
        (
            Database(
                db_type="snowflake",
                host="xy12345.eu-west-1",
                database="SALES",
                username="u",
                password_env="DR_PASSWORD",
                extra={"warehouse": "COMPARE_WH", "role": "SENTINEL"},
            ),
            (
                "snowflake",
                (),
                {
                    "account": "xy12345.eu-west-1",
                    "user": "u",
                    "password": "canary-pw",
                    "database": "SALES",
                    "autocommit": True,
                    "warehouse": "COMPARE_WH",
                    "role": "SENTINEL",
                },
            ),
        ),
    ],
    ids=lambda v: v.db_type if isinstance(v, Database) else "",
)
def test_each_driver_is_called_with_the_settings(calls, database, call):
    connector(database)()
    assert calls == [call]


def test_a_side_is_reached_as_the_loader_reaches_the_same_database(calls):
    """One driver per engine: the loader's dialect connects both. Its Snowflake account URL form (as the
    Spark connector's sfUrl) was once passed whole by the sentinel alone."""
    from include.dataloader.dialects import ConnectionParams, dialect_for

    url = "xy12345.eu-west-1.snowflakecomputing.com"
    connector(Database(db_type="snowflake", host=url, username="u", password_env="DR_PASSWORD"))()
    dialect_for("snowflake").connect(ConnectionParams(host=url, user="u", password="canary-pw"))

    sentinel, loader = calls
    assert sentinel == loader
    assert sentinel[2]["account"] == "xy12345.eu-west-1"


def test_snowflake_without_its_driver_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "snowflake.connector", None)
    with pytest.raises(ConfigError, match="pip install snowflake-connector-python"):
        connector(Database(db_type="snowflake", host="acct"))


def test_a_comparison_whose_target_is_an_airflow_connection(pair, tmp_path, monkeypatch):
    drift(pair)
    target = conninfo_to_dict(pair.urls["target"])
    conn = {"conn_type": "postgres", "host": target["host"], "login": target["user"], "schema": target["dbname"]}
    monkeypatch.setenv("AIRFLOW_CONN_SENTINEL_DR", json.dumps(conn))
    monkeypatch.setenv("SENTINEL_PROD_URL", pair.urls["source"])
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source_database": {"db_type": "postgresql", "url_env": "SENTINEL_PROD_URL"},
                "target_database": {"db_type": "postgresql", "conn_id": "sentinel_dr"},
                "tables": [{"table_name": "accounts", "primary_key": "id", "chunk_size": 250}],
                "options": {"output_dir": str(tmp_path / "out")},
            }
        )
    )

    assert main(["compare", str(config)]) == 1
    [sql] = (tmp_path / "out").glob("sync_target_ACCOUNTS_*.sql")
    assert "-- inserts 2, updates 7, deletes 1" in sql.read_text()
