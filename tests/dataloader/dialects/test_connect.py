"""Each loader dialect's driver connection: the exact connect call where no server runs here, PostgreSQL for real."""

import sys
import types

import pytest

from include.dataloader.dialects import ConnectionParams, dialect_for

PARAMS = ConnectionParams(host="db.example.com", port=1234, database="sales", user="loader", password="canary-pw")


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return "connection"


@pytest.fixture
def recorder(monkeypatch):
    def patch(module: str, attribute: str) -> Recorder:
        record = Recorder()
        monkeypatch.setattr(f"{module}.{attribute}", record)
        return record

    return patch


def test_oracle_connects_in_thin_mode_to_the_service_name(recorder):
    connect = recorder("oracledb", "connect")

    assert dialect_for("oracle").connect(PARAMS) == "connection"

    assert connect.calls == [((), {"user": "loader", "password": "canary-pw", "dsn": "db.example.com:1234/sales"})]


def test_sqlserver_connects_with_pymssql_in_autocommit(recorder):
    connect = recorder("pymssql", "connect")

    dialect_for("sqlserver").connect(ConnectionParams(host="mssql", database="sales", user="u", password="canary-p"))

    assert connect.calls == [
        (
            (),
            {
                "server": "mssql",
                "port": "1433",
                "user": "u",
                "password": "canary-p",
                "database": "sales",
                "autocommit": True,
            },
        )
    ]


def test_clickhouse_connects_over_http_with_the_connections_options(recorder):
    connect = recorder("clickhouse_connect.dbapi", "connect")

    dialect_for("clickhouse").connect(ConnectionParams(host="ch", options={"secure": True}))

    assert connect.calls == [
        (
            (),
            {
                "host": "ch",
                "port": 8123,
                "username": "default",
                "password": "",
                "database": "default",
                "secure": True,
            },
        )
    ]


def test_snowflake_connects_to_the_account_with_warehouse_and_role(monkeypatch):
    connector = types.SimpleNamespace(connect=Recorder())
    monkeypatch.setitem(sys.modules, "snowflake", types.SimpleNamespace(connector=connector))
    monkeypatch.setitem(sys.modules, "snowflake.connector", connector)
    params = ConnectionParams(
        host="xy12345.eu-west-1.snowflakecomputing.com",
        database="SALES",
        user="LOADER",
        password="canary-pw",
        options={"warehouse": "LOAD_WH", "role": "LOADER"},
    )

    dialect_for("snowflake").connect(params)

    assert connector.connect.calls == [
        (
            (),
            {
                "account": "xy12345.eu-west-1",
                "user": "LOADER",
                "password": "canary-pw",
                "database": "SALES",
                "autocommit": True,
                "warehouse": "LOAD_WH",
                "role": "LOADER",
            },
        )
    ]


def test_snowflake_without_its_connector_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "snowflake", None)

    with pytest.raises(ImportError, match="pip install snowflake-connector-python"):
        dialect_for("snowflake").connect(PARAMS)


def test_postgresql_connects_for_real_from_fields_or_a_url(source_url):
    from psycopg.conninfo import conninfo_to_dict

    fields = conninfo_to_dict(source_url)
    params = ConnectionParams(
        host=fields.get("host"),
        port=int(fields["port"]) if fields.get("port") else None,
        database=fields.get("dbname"),
        user=fields.get("user"),
        password=fields.get("password"),
    )
    for given in (params, ConnectionParams(url=source_url)):
        with dialect_for("postgresql").connect(given) as conn:
            assert conn.execute("SELECT 41 + 1").fetchone()[0] == 42
