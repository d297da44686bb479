"""Declared source types to Spark types, per dialect, and the catalog query each dialect sends."""

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from include.dataloader.dialects import ColumnInfo, UnsupportedSourceType, dialect_for

TYPES = [
    # (db_type, declared type, precision, scale, Spark type)
    ("oracle", "NUMBER", 12, 2, "decimal(12,2)"),
    ("oracle", "NUMBER", 9, 0, "int"),
    ("oracle", "NUMBER", 18, 0, "bigint"),
    ("oracle", "NUMBER", 38, 0, "decimal(38,0)"),
    ("oracle", "NUMBER", None, None, "decimal(38,10)"),
    ("oracle", "DATE", None, None, "timestamp_ntz"),
    ("oracle", "TIMESTAMP(6)", None, None, "timestamp_ntz"),
    ("oracle", "TIMESTAMP(6) WITH TIME ZONE", None, None, "timestamp"),
    ("oracle", "VARCHAR2", None, None, "string"),
    ("oracle", "CLOB", None, None, "string"),
    ("sqlserver", "datetime2", None, None, "timestamp_ntz"),
    ("sqlserver", "datetimeoffset", None, None, "timestamp"),
    ("sqlserver", "money", 19, 4, "decimal(19,4)"),
    ("sqlserver", "bit", None, None, "boolean"),
    ("sqlserver", "tinyint", 3, 0, "smallint"),
    ("sqlserver", "uniqueidentifier", None, None, "string"),
    ("postgresql", "numeric", 12, 2, "decimal(12,2)"),
    ("postgresql", "numeric", None, None, "decimal(38,10)"),
    ("postgresql", "timestamp with time zone", None, None, "timestamp"),
    ("postgresql", "timestamp without time zone", None, None, "timestamp_ntz"),
    ("postgresql", "jsonb", None, None, "string"),
    ("snowflake", "NUMBER", 38, 0, "decimal(38,0)"),
    ("snowflake", "NUMBER", 10, 2, "decimal(10,2)"),
    ("snowflake", "VARIANT", None, None, "string"),
    ("snowflake", "TIMESTAMP_TZ", None, None, "timestamp"),
    ("snowflake", "TIMESTAMP_NTZ", None, None, "timestamp_ntz"),
    ("clickhouse", "Nullable(Decimal(12, 2))", None, None, "decimal(12,2)"),
    ("clickhouse", "Nullable(DateTime64(6))", None, None, "timestamp"),
    ("clickhouse", "LowCardinality(Nullable(String))", None, None, "string"),
    ("clickhouse", "UInt64", None, None, "decimal(20,0)"),
    ("clickhouse", "Date32", None, None, "date"),
]


@pytest.mark.parametrize(("db_type", "declared", "precision", "scale", "spark"), TYPES)
def test_spark_type(db_type, declared, precision, scale, spark):
    assert dialect_for(db_type).spark_type(ColumnInfo("c", declared, precision, scale)) == spark


def test_an_unknown_type_names_the_column_and_the_fix():
    with pytest.raises(UnsupportedSourceType, match=r"column 'shape': oracle type 'SDO_GEOMETRY' has no Spark"):
        dialect_for("oracle").spark_type(ColumnInfo("shape", "SDO_GEOMETRY"))


COLUMNS_QUERIES = {
    "oracle": "SELECT column_name AS column_name, data_type AS data_type, data_precision AS numeric_precision, "
    "data_scale AS numeric_scale FROM all_tab_columns WHERE table_name = 'ORDERS' AND owner = 'SALES' "
    "ORDER BY column_id NULLS FIRST",
    "postgresql": "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
    "WHERE table_name = 'ORDERS' AND table_schema = 'SALES' ORDER BY ordinal_position NULLS FIRST",
    "sqlserver": "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
    "WHERE table_name = 'ORDERS' AND table_schema = 'SALES' ORDER BY ordinal_position",
    "snowflake": "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
    "WHERE table_name = 'ORDERS' AND table_schema = 'SALES' ORDER BY ordinal_position NULLS FIRST",
    "clickhouse": "SELECT name AS column_name, type AS data_type, CAST(NULL AS Nullable(Int32)) AS numeric_precision, "
    "CAST(NULL AS Nullable(Int32)) AS numeric_scale FROM system.columns WHERE table = 'ORDERS' AND database = 'SALES' "
    "ORDER BY position NULLS FIRST",
}


@pytest.mark.parametrize("db_type", sorted(COLUMNS_QUERIES))
def test_columns_query(db_type):
    dialect = dialect_for(db_type)
    sql = dialect.columns_query("SALES", "ORDERS")
    assert sql == COLUMNS_QUERIES[db_type]
    parsed = sqlglot.parse_one(sql, read=dialect.sqlglot, error_level=ErrorLevel.RAISE)
    assert [t.name for t in parsed.find_all(sqlglot.exp.Table)] == [sql.split(" FROM ")[1].split()[0].split(".")[-1]]


def test_a_table_name_with_a_quote_stays_a_literal():
    sql = dialect_for("postgresql").columns_query("public", "o'brien")
    assert "table_name = 'o''brien'" in sql
