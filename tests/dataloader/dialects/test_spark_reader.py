"""The exact options Spark's JDBC / Snowflake reader gets on Databricks (no such database runs here)."""

import pytest
from pyspark.sql import Row

from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.readers import Partitioning, SparkSourceReader

PARAMS = ConnectionParams(
    host="db.example.internal", port=None, database="SALES", user="loader", password="canary-s3cret"
)

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
        "password": "canary-s3cret",
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
        password="canary-pw",
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
        "sfPassword": "canary-pw",
        "query": "SELECT 1",
    }


def test_connection_params_never_show_the_password():
    assert "canary-s3cret" not in repr(PARAMS)


class RecordingSpark:
    """Spark's DataFrameReader as far as the loader uses it, recording every load's options.

    Stands in for Spark JDBC, which cannot run here; answers the catalog and bounds queries.
    """

    def __init__(self, columns, bounds):
        self.loads = []
        self.columns, self.bounds = columns, bounds

    @property
    def read(self):
        return self

    def format(self, name):
        self.current = {"format": name}
        return self

    def options(self, **options):
        self.current.update(options)
        return self

    def load(self):
        self.loads.append(self.current)
        sql = self.current.get("query", "")
        if "information_schema" in sql or "all_tab_columns" in sql:
            return Frame([Row(*c) for c in self.columns])
        if "MIN(" in sql:
            return Frame([Row(lower_bound=self.bounds[0], upper_bound=self.bounds[1])])
        return Frame([])


class Frame:
    def __init__(self, rows):
        self.rows = rows

    def collect(self):
        return self.rows

    def toDF(self, *names):
        return self

    def select(self, *columns):
        return self


def source_table(spark, primary_key):
    from include.control.model import ControlRow
    from include.dataloader.source import SourceTable

    row = ControlRow.from_mapping(
        {
            "control_key": "ora.orders",
            "db_config_key": "ora",
            "source_schema": "SALES",
            "source_table_name": "ORDERS",
            "destination_schema": "sales",
            "destination_table_name": "orders",
            "load_strategy": "full",
            "cron": "@daily",
            "primary_key_columns": primary_key,
        }
    )
    return SourceTable(row, dialect_for("oracle"), SparkSourceReader(spark, dialect_for("oracle"), PARAMS))


ORACLE_COLUMNS = [("ORDER_ID", "NUMBER", 12, 0), ("CODE", "VARCHAR2", None, None)]


def test_a_full_read_is_split_on_an_integer_key():
    spark = RecordingSpark(ORACLE_COLUMNS, (1, 1_000_000))
    table = source_table(spark, ["ORDER_ID"])

    table.read(table.queries.full(), parallel=True)

    bounds_query, data_read = spark.loads[-2]["query"], spark.loads[-1]
    assert bounds_query == (
        'SELECT MIN("ORDER_ID") AS lower_bound, MAX("ORDER_ID") AS upper_bound '
        'FROM (SELECT "ORDER_ID", "CODE" FROM "SALES"."ORDERS") src'
    )
    assert data_read == {
        "format": "jdbc",
        "url": "jdbc:oracle:thin:@//db.example.internal:1521/SALES",
        "driver": "oracle.jdbc.OracleDriver",
        "fetchsize": "10000",
        "user": "loader",
        "password": "canary-s3cret",
        "dbtable": '(SELECT "ORDER_ID", "CODE" FROM "SALES"."ORDERS") src',
        "partitionColumn": "ORDER_ID",
        "lowerBound": "1",
        "upperBound": "1000000",
        "numPartitions": "8",
    }


def test_a_read_without_an_integer_key_is_one_query():
    spark = RecordingSpark(ORACLE_COLUMNS, (1, 10))
    table = source_table(spark, ["CODE"])

    table.read(table.queries.full(), parallel=True)

    assert spark.loads[-1]["query"] == 'SELECT "ORDER_ID", "CODE" FROM "SALES"."ORDERS"'
    assert "partitionColumn" not in spark.loads[-1]


def test_an_incremental_read_is_split_with_bounds_of_the_rows_it_reads():
    """Every strategy's read is partitioned, not only full loads: the bounds come from the same filter."""
    spark = RecordingSpark([*ORACLE_COLUMNS, ("UPDATED_AT", "TIMESTAMP(6)", None, None)], (900_001, 1_000_000))
    table = source_table(spark, ["ORDER_ID"])
    since = table.queries.since(table.cursor("UPDATED_AT", "timestamp"), "2024-05-01 00:00:00")

    table.read(since)

    selected = 'SELECT "ORDER_ID", "CODE", "UPDATED_AT" FROM "SALES"."ORDERS" WHERE "UPDATED_AT" >= '
    watermark = "TO_TIMESTAMP('2024-05-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.FF6')"
    assert spark.loads[-2]["query"] == (
        f'SELECT MIN("ORDER_ID") AS lower_bound, MAX("ORDER_ID") AS upper_bound FROM ({selected}{watermark}) src'
    )
    assert {k: v for k, v in spark.loads[-1].items() if k not in ("url", "driver", "user", "password")} == {
        "format": "jdbc",
        "fetchsize": "10000",
        "dbtable": f"({selected}{watermark}) src",
        "partitionColumn": "ORDER_ID",
        "lowerBound": "900001",
        "upperBound": "1000000",
        "numPartitions": "8",
    }


def test_a_read_of_no_rows_is_one_query():
    spark = RecordingSpark(ORACLE_COLUMNS, (None, None))
    table = source_table(spark, ["ORDER_ID"])

    table.read(table.queries.full())

    assert spark.loads[-1]["query"] == 'SELECT "ORDER_ID", "CODE" FROM "SALES"."ORDERS"'
    assert "partitionColumn" not in spark.loads[-1]


def test_sqlserver_bounds_query_is_tsql():
    spark = RecordingSpark([("id", "bigint", 19, 0), ("name", "nvarchar", None, None)], (1, 5))
    from include.control.model import ControlRow
    from include.dataloader.source import SourceTable

    row = ControlRow.from_mapping(
        {
            "control_key": "mssql.orders",
            "db_config_key": "mssql",
            "source_schema": "dbo",
            "source_table_name": "orders",
            "destination_schema": "sales",
            "destination_table_name": "orders",
            "load_strategy": "full",
            "cron": "@daily",
            "primary_key_columns": ["id"],
        }
    )
    dialect = dialect_for("sqlserver")
    table = SourceTable(row, dialect, SparkSourceReader(spark, dialect, PARAMS))

    table.read(table.queries.full())

    assert spark.loads[-2]["query"] == (
        "SELECT MIN([id]) AS lower_bound, MAX([id]) AS upper_bound "
        "FROM (SELECT [id] AS [id], [name] AS [name] FROM [dbo].[orders]) AS src"
    )
    assert spark.loads[-1]["dbtable"] == "(SELECT [id], [name] FROM [dbo].[orders]) src"
    assert (spark.loads[-1]["lowerBound"], spark.loads[-1]["upperBound"]) == ("1", "5")
