"""Oracle, SQL Server and Snowflake on the local engine: no such server runs here, so their drivers are
replaced by recorders that answer with Arrow data of the drivers' shapes. Each test pins the exact driver
calls and SQL, then loads through the real reader, staging and Sail, and checks the declared types.

Snowflake: fakesnow needs snowflake-connector-python, whose protobuf<7 pin would downgrade Airflow 3.3's
protobuf 7 (and sqlglot): it is not installed, and these recorders stand in for it.
"""

from __future__ import annotations

import sys
import types
from datetime import datetime
from decimal import Decimal

import mssql_python
import oracledb
import pyarrow as pa
import pytest

from include.control.model import ControlRow
from include.dataloader.dialects import ConnectionParams, MissingDriver, dialect_for
from include.dataloader.readers import UnreadableColumn, local_reader
from include.dataloader.source import SourceTable
from include.dataloader.strategies import STRATEGIES
from include.dataloader.strategies.base import LoadContext
from include.dataloader.target import LocalWarehouse

PARAMS = ConnectionParams(host="db.example.internal", database="SALES", user="loader", password="canary-p;w}d")


class Capsule:
    """An Arrow PyCapsule stream, as oracledb's DataFrame is."""

    def __init__(self, table: pa.Table):
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


class Recorder:
    """A driver connection and cursor: answers each query by the first matching key of ``answers``."""

    def __init__(self, calls: list, answers: dict[str, pa.Table]):
        self.calls, self.answers, self.query = calls, answers, None

    def answer(self, query: str) -> pa.Table:
        return next(table for key, table in self.answers.items() if key in query)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.calls.append(("close",))

    def close(self):
        self.calls.append(("close",))

    def cursor(self):
        return self

    def execute(self, query):
        self.calls.append(("execute", query))
        self.query = query

    # oracledb
    def fetch_df_batches(self, statement, size, fetch_decimals):
        self.calls.append(("fetch_df_batches", statement, size, fetch_decimals))
        return iter([Capsule(self.answer(statement))])

    # mssql-python
    def arrow_reader(self, batch_size):
        self.calls.append(("arrow_reader", batch_size))
        return self.answer(self.query).to_reader(max_chunksize=batch_size)

    # snowflake-connector-python
    def fetch_arrow_batches(self):
        self.calls.append(("fetch_arrow_batches",))
        table = self.answer(self.query)
        return iter([table] if table.num_rows else [])

    def fetch_arrow_all(self, force_return_table):
        self.calls.append(("fetch_arrow_all", force_return_table))
        return self.answer(self.query)


def catalog(*columns) -> pa.Table:
    names, kinds, precisions, scales = zip(*columns, strict=True)
    return pa.table(
        {
            "COLUMN_NAME": list(names),
            "DATA_TYPE": list(kinds),
            "NUMERIC_PRECISION": pa.array(precisions, pa.int64()),
            "NUMERIC_SCALE": pa.array(scales, pa.int64()),
        }
    )


def load(spark, tmp_path, db_type: str, table: str, schema: str = "SALES") -> LoadContext:
    row = ControlRow.from_mapping(
        {
            "control_key": f"{db_type}.orders",
            "db_config_key": db_type,
            "source_schema": schema,
            "source_table_name": table,
            "destination_schema": "sales",
            "destination_table_name": f"{db_type}_orders",
            "load_strategy": "full",
            "cron": "@daily",
            "primary_key_columns": [],
        }
    )
    dialect = dialect_for(db_type)
    warehouse = LocalWarehouse(spark, tmp_path / "warehouse")
    reader = local_reader(spark, dialect, PARAMS, warehouse.extract_staging(), batch_rows=2, inline_bytes=0)
    ctx = LoadContext(SourceTable(row, dialect, reader), warehouse)
    try:
        STRATEGIES["full"](ctx)
    finally:
        reader.close()
    return ctx


def landed(ctx: LoadContext) -> tuple[dict[str, str], list[tuple]]:
    df = ctx.warehouse.read(ctx.target)
    return {f.name: f.dataType.simpleString() for f in df.schema.fields}, sorted(tuple(r) for r in df.collect())


ORACLE_DATA = pa.table(
    {
        "ORDER_ID": pa.array([1, 2, 3], pa.int64()),
        "AMOUNT": pa.array([Decimal("1.50"), None, Decimal("-2.25")], pa.decimal128(12, 2)),
        "NAME": ["a", "b", None],
        "ORDERED": pa.array([datetime(2024, 1, 1, 13, 14, 15)] * 3, pa.timestamp("s")),  # DATE: with a time
        "PAID_AT": pa.array([datetime(2024, 1, 2, 3, 4, 5, 6)] * 3, pa.timestamp("us", "UTC")),
        # a NUMBER without precision, selected as TO_CHAR(..., 'TM9'): the driver's text
        "BIG": pa.array(["1234567890123456789", "-.00000000012345", None], pa.large_string()),
    }
)


def test_oracle_thin_mode_fetches_exact_decimals_in_batches(spark, tmp_path, monkeypatch):
    calls: list = []
    columns = catalog(
        ("ORDER_ID", "NUMBER", 12, 0),
        ("AMOUNT", "NUMBER", 12, 2),
        ("NAME", "VARCHAR2", None, None),
        ("ORDERED", "DATE", None, None),
        ("PAID_AT", "TIMESTAMP(6) WITH TIME ZONE", None, None),
        ("BIG", "NUMBER", None, None),
    )
    answers = {"all_tab_columns": columns, 'FROM "SALES"."ORDERS"': ORACLE_DATA}

    def connect(**kwargs):
        calls.append(("connect", kwargs))
        return Recorder(calls, answers)

    monkeypatch.setattr(oracledb, "connect", connect)

    ctx = load(spark, tmp_path, "oracle", "ORDERS")

    catalog_sql = (
        "SELECT column_name AS column_name, data_type AS data_type, data_precision AS numeric_precision, "
        "data_scale AS numeric_scale FROM all_tab_columns WHERE table_name = 'ORDERS' AND owner = 'SALES' "
        "ORDER BY column_id NULLS FIRST"
    )
    data_sql = (
        'SELECT "ORDER_ID", "AMOUNT", "NAME", "ORDERED", "PAID_AT", '
        "TO_CHAR(\"BIG\", 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''') AS \"BIG\" FROM \"SALES\".\"ORDERS\""
    )
    login = ("connect", {"user": "loader", "password": "canary-p;w}d", "dsn": "db.example.internal:1521/SALES"})
    assert calls == [
        login,
        ("fetch_df_batches", catalog_sql, 2, True),
        ("close",),
        login,
        ("fetch_df_batches", data_sql, 2, True),
        ("close",),
    ]
    assert landed(ctx) == (
        {"ORDER_ID": "bigint", "AMOUNT": "decimal(12,2)", "NAME": "string", "ORDERED": "timestamp_ntz",
         "PAID_AT": "timestamp", "BIG": "decimal(38,10)"},
        [
            (1, Decimal("1.50"), "a", datetime(2024, 1, 1, 13, 14, 15), datetime(2024, 1, 2, 3, 4, 5, 6),
             Decimal("1234567890123456789.0000000000")),
            (2, None, "b", datetime(2024, 1, 1, 13, 14, 15), datetime(2024, 1, 2, 3, 4, 5, 6),
             Decimal("-0.0000000001")),
            (3, Decimal("-2.25"), None, datetime(2024, 1, 1, 13, 14, 15), datetime(2024, 1, 2, 3, 4, 5, 6), None),
        ],
    )  # fmt: skip


def test_sqlserver_reads_arrow_batches_through_mssql_python(spark, tmp_path, monkeypatch):
    calls: list = []
    columns = catalog(
        ("id", "int", 10, 0),
        ("flag", "bit", None, None),
        ("small", "tinyint", 3, 0),
        ("price", "money", 19, 4),
        ("at", "datetime2", None, None),
        ("offset_at", "datetimeoffset", None, None),
        ("guid", "uniqueidentifier", None, None),
    )
    data = pa.table(
        {
            "id": pa.array([7], pa.int32()),
            "flag": [True],
            "small": pa.array([255], pa.uint8()),
            "price": pa.array([Decimal("12.3456")], pa.decimal128(19, 4)),
            "at": pa.array([datetime(2024, 5, 6, 7, 8, 9, 123456)], pa.timestamp("ns")),
            "offset_at": pa.array([datetime(2024, 5, 6, 5, 8, 9)], pa.timestamp("us", "+00:00")),
            "guid": ["6F9619FF-8B86-D011-B42D-00C04FC964FF"],
        }
    )
    answers = {"information_schema": columns, "FROM [dbo].[orders]": data}

    def connect(connection_string, autocommit):
        calls.append(("connect", connection_string, autocommit))
        return Recorder(calls, answers)

    monkeypatch.setattr(mssql_python, "connect", connect)

    ctx = load(spark, tmp_path, "sqlserver", "orders", schema="dbo")

    login = (
        "connect",
        "Server={tcp:db.example.internal,1433};Database={SALES};UID={loader};PWD={canary-p;w}}d};"
        "Encrypt={yes};TrustServerCertificate={no}",
        True,
    )
    catalog_sql = (
        "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_name = 'orders' AND table_schema = 'dbo' ORDER BY ordinal_position"
    )
    data_sql = "SELECT [id], [flag], [small], [price], [at], [offset_at], [guid] FROM [dbo].[orders]"
    assert calls == [
        login, ("execute", catalog_sql), ("arrow_reader", 2), ("close",),
        login, ("execute", data_sql), ("arrow_reader", 2), ("close",),
    ]  # fmt: skip
    assert landed(ctx) == (
        {"id": "int", "flag": "boolean", "small": "smallint", "price": "decimal(19,4)", "at": "timestamp_ntz",
         "offset_at": "timestamp", "guid": "string"},
        [(7, True, 255, Decimal("12.3456"), datetime(2024, 5, 6, 7, 8, 9, 123456), datetime(2024, 5, 6, 5, 8, 9),
          "6F9619FF-8B86-D011-B42D-00C04FC964FF")],
    )  # fmt: skip


@pytest.fixture
def snowflake_connector(monkeypatch):
    calls: list = []
    answers: dict[str, pa.Table] = {}

    def connect(**kwargs):
        calls.append(("connect", kwargs))
        return Recorder(calls, answers)

    connector = types.SimpleNamespace(connect=connect)
    monkeypatch.setitem(sys.modules, "snowflake", types.SimpleNamespace(connector=connector))
    monkeypatch.setitem(sys.modules, "snowflake.connector", connector)
    return calls, answers


def test_snowflake_reads_the_connectors_arrow_batches(spark, tmp_path, snowflake_connector):
    calls, answers = snowflake_connector
    answers["information_schema"] = catalog(
        ("ID", "NUMBER", 38, 0), ("TOTAL", "NUMBER", 10, 2), ("AT", "TIMESTAMP_NTZ", None, None)
    )
    answers['FROM "RAW"."ORDERS"'] = pa.table(
        {
            "ID": pa.array([Decimal(1), Decimal(10**30)], pa.decimal128(38, 0)),
            "TOTAL": pa.array([Decimal("1.10"), Decimal("2.20")], pa.decimal128(10, 2)),
            "AT": pa.array([datetime(2024, 1, 1), datetime(2024, 1, 2)], pa.timestamp("ns")),
        }
    )
    params = ConnectionParams(
        host="acme.snowflakecomputing.com",
        database="ANALYTICS",
        user="loader",
        password="canary-pw",
        options={"warehouse": "LOAD_WH", "role": "LOADER"},
    )
    dialect = dialect_for("snowflake")

    batches = list(dialect.arrow_batches(params, 'SELECT "ID", "TOTAL", "AT" FROM "RAW"."ORDERS"', 1))

    assert calls == [
        (
            "connect",
            {"account": "acme", "user": "loader", "password": "canary-pw", "database": "ANALYTICS",
             "autocommit": True, "warehouse": "LOAD_WH", "role": "LOADER"},
        ),
        ("execute", 'SELECT "ID", "TOTAL", "AT" FROM "RAW"."ORDERS"'),
        ("fetch_arrow_batches",),
        ("close",),  # the cursor
        ("close",),  # the connection
    ]  # fmt: skip
    assert [b.num_rows for b in batches] == [1, 1]

    calls.clear()
    ctx = load(spark, tmp_path, "snowflake", "ORDERS", schema="RAW")
    assert landed(ctx) == (
        {"ID": "decimal(38,0)", "TOTAL": "decimal(10,2)", "AT": "timestamp_ntz"},
        [(Decimal(1), Decimal("1.10"), datetime(2024, 1, 1)), (Decimal(10**30), Decimal("2.20"), datetime(2024, 1, 2))],
    )


def test_snowflake_empty_result_asks_for_the_empty_table(snowflake_connector):
    calls, answers = snowflake_connector
    answers["WHERE 1 = 0"] = pa.table({"ID": pa.array([], pa.int64())})

    batches = list(dialect_for("snowflake").arrow_batches(ConnectionParams(host="acme"), "SELECT 1 WHERE 1 = 0"))

    assert [(b.num_rows, b.schema.names) for b in batches] == [(0, ["ID"])]
    assert calls[-4:] == [("fetch_arrow_batches",), ("fetch_arrow_all", True), ("close",), ("close",)]


def test_a_missing_driver_names_the_package_and_the_control_row(spark, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "snowflake.connector", None)  # as if not installed

    with pytest.raises(MissingDriver) as error:
        load(spark, tmp_path, "snowflake", "ORDERS", schema="RAW")

    message = str(error.value)
    assert message.startswith("snowflake.orders (source table RAW.ORDERS): snowflake sources need the Python ")
    assert "pip install snowflake-connector-python where Airflow is not installed" in message
    assert "execution_target: databricks" in message


def test_a_missing_sqlserver_driver_names_its_pinned_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "mssql_python", None)
    with pytest.raises(MissingDriver, match=r"pip install mssql-python \(the version pinned in requirements.txt\)"):
        next(dialect_for("sqlserver").arrow_batches(PARAMS, "SELECT 1"))


def test_a_column_the_local_engine_cannot_stage_names_dialect_row_and_fix(spark, tmp_path, monkeypatch):
    columns = catalog(("ID", "NUMBER", 9, 0), ("TAGS", "VARCHAR2", None, None))
    nested = pa.table({"ID": pa.array([1], pa.int64()), "TAGS": pa.array([["a", "b"]], pa.list_(pa.string()))})
    answers = {"all_tab_columns": columns, "FROM": nested}
    monkeypatch.setattr(oracledb, "connect", lambda **kwargs: Recorder([], answers))

    with pytest.raises(UnreadableColumn) as error:
        load(spark, tmp_path, "oracle", "ORDERS")

    assert str(error.value) == (
        "oracle.orders (source table SALES.ORDERS): oracle column 'TAGS' arrives as Arrow list<item: string>, "
        "which the local engine cannot stage; select it as text in a view at the source (or exclude it), "
        "or run the table on Databricks (execution_target: databricks)"
    )


def test_a_declared_type_without_a_mapping_names_the_row_column_and_fix(spark, tmp_path, monkeypatch):
    from include.dataloader.dialects import UnsupportedSourceType

    columns = catalog(("ID", "NUMBER", 9, 0), ("DOC", "XMLTYPE", None, None))
    monkeypatch.setattr(oracledb, "connect", lambda **kwargs: Recorder([], {"all_tab_columns": columns}))

    with pytest.raises(UnsupportedSourceType) as error:
        load(spark, tmp_path, "oracle", "ORDERS")

    assert str(error.value) == (
        "oracle.orders (source table SALES.ORDERS): column 'DOC': oracle type 'XMLTYPE' has no Spark mapping; "
        "exclude the column or add the type to the dialect's TYPES map"
    )


@pytest.mark.parametrize(
    "message",
    [
        "MissingDriver: snowflake.orders (source table RAW.ORDERS): snowflake sources need the Python package "
        "snowflake-connector-python on the local engine: pip install snowflake-connector-python ...",
        "UnreadableColumn: oracle.orders (source table SALES.ORDERS): oracle column 'TAGS' arrives as Arrow "
        "list<item: string>, which the local engine cannot stage; ...",
    ],
)
def test_the_failed_load_monitor_sends_these_to_a_person_not_a_retry(message):
    from include.dataloader.monitors.analysis import RuleAnalyzer

    decision = RuleAnalyzer().analyze(message)
    assert (decision.action, decision.confidence) == ("REVIEW", 0.9)
