"""Oracle NUMBER without precision: python-oracledb's data frames hand it over as a double, so the local
engine selects it as exact text and turns that into decimal(38,10) in Arrow; Spark's JDBC reader (Databricks)
reads it exactly itself and gets the query without the text form. No Oracle server runs here: the SQL is
checked as text, the conversion with real pyarrow."""

from decimal import Decimal

import pyarrow as pa
import pytest

from include.control.model import ControlRow
from include.dataloader.dialects import ColumnInfo, dialect_for
from include.dataloader.dialects.oracle import NumberDoesNotFit, exact_decimals
from include.dataloader.queries import Cursor
from include.dataloader.readers import ArrowSourceReader, SparkSourceReader
from include.dataloader.source import SourceTable

ORACLE = dialect_for("oracle")
LEDGER = [
    ColumnInfo("ID", "NUMBER"),  # ALL_TAB_COLUMNS: data_precision NULL
    ColumnInfo("AMOUNT", "NUMBER", 10, 2),
    ColumnInfo("REF", "NUMBER", 19, 0),
    ColumnInfo("NOTE", "VARCHAR2"),
]
TO_CHAR = "TO_CHAR(\"ID\", 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''') AS \"ID\""


def ledger(reader_class) -> SourceTable:
    row = ControlRow.from_mapping(
        {
            "control_key": "oracle.ledger",
            "db_config_key": "oracle",
            "source_schema": "SALES",
            "source_table_name": "LEDGER",
            "destination_schema": "sales",
            "destination_table_name": "ledger",
            "load_strategy": "incremental",
            "incremental_column": "REF",
            "incremental_type": "integer",
            "cron": "@daily",
            "primary_key_columns": ["REF"],
        }
    )
    table = SourceTable(row, ORACLE, reader_class.__new__(reader_class))  # no session: only queries are built
    table.columns = LEDGER  # what the catalog query answers
    return table


def test_the_local_engine_selects_an_unconstrained_number_as_exact_text():
    queries = ledger(ArrowSourceReader).queries
    assert queries.full() == f'SELECT {TO_CHAR}, "AMOUNT", "REF", "NOTE" FROM "SALES"."LEDGER"'
    assert queries.since(Cursor("REF", "integer"), 1000) == (
        f'SELECT {TO_CHAR}, "AMOUNT", "REF", "NOTE" FROM "SALES"."LEDGER" WHERE "REF" >= 1000'
    )


def test_spark_jdbc_reads_the_column_itself_as_decimal_38_10():
    table = ledger(SparkSourceReader)
    assert table.queries.full() == 'SELECT "ID", "AMOUNT", "REF", "NOTE" FROM "SALES"."LEDGER"'
    # both engines declare the same target types
    assert table.spark_types == {
        "ID": "decimal(38,10)",
        "AMOUNT": "decimal(10,2)",
        "REF": "decimal(19,0)",
        "NOTE": "string",
    }


def test_the_dialect_finds_the_columns_it_selected_as_exact_text():
    query = ledger(ArrowSourceReader).queries.full()
    assert ORACLE._exact_text_columns(query) == ('"SALES"."LEDGER"', ["ID"])
    assert ORACLE._exact_text_columns('SELECT "ID" FROM "SALES"."LEDGER"') == ('"SALES"."LEDGER"', [])


TEXTS = {  # TO_CHAR(n, 'TM9') -> the decimal(38,10) landed
    "1234567890123456789": Decimal("1234567890123456789.0000000000"),
    "-.00000000012345": Decimal("-0.0000000001"),  # 14 fractional digits: rounded to 10
    "12345678901234567890.1234567891": Decimal("12345678901234567890.1234567891"),
    ".00000000005": Decimal("0.0000000001"),  # a tie goes away from zero, as Oracle's ROUND and Spark JDBC
    "-.00000000005": Decimal("-0.0000000001"),
    "9999999999999999999999999999.49999999995": Decimal("9999999999999999999999999999.5000000000"),
    "1.0E-70": Decimal("0E-10"),  # TM9 writes scientific notation past 64 characters
}


def test_exact_text_becomes_decimal_38_10_with_nulls_kept():
    texts = pa.array([*TEXTS, None], pa.large_string())
    decimals = exact_decimals(texts, table='"SALES"."LEDGER"', column="ID")
    assert decimals.type == pa.decimal128(38, 10)
    assert decimals.to_pylist() == [*TEXTS.values(), None]


def test_texts_that_fit_exactly_land_unchanged():
    fit = [t for t, d in TEXTS.items() if Decimal(t) == d]  # Arrow's own cast takes these: no rounding
    decimals = exact_decimals(pa.array([*fit, None], pa.large_string()), table='"SALES"."LEDGER"', column="ID")
    assert len(fit) == 2
    assert decimals.type == pa.decimal128(38, 10)
    assert decimals.to_pylist() == [*(TEXTS[t] for t in fit), None]


@pytest.mark.parametrize(
    "text", ["12345678901234567890123456789", "9999999999999999999999999999.99999999995", "1E+125"]
)
def test_a_value_wider_than_28_integer_digits_names_table_column_and_fix(text):
    with pytest.raises(NumberDoesNotFit) as error:
        exact_decimals(pa.array([text], pa.large_string()), table='"SALES"."LEDGER"', column="ID")
    assert str(error.value) == (
        f'oracle table "SALES"."LEDGER", column \'ID\': the value {text} does not fit decimal(38,10), the type '
        "a NUMBER declared without precision loads as (at most 28 integer digits); declare the column's "
        "precision at the source (NUMBER(p,s) loads as decimal(p,s)), or read the table through a view that "
        "selects the column as such a NUMBER or as text"
    )
