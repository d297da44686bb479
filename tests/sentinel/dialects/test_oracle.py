"""Oracle: the exact SQL of every query and of a sync file, each parsed by sqlglot as Oracle.

No Oracle server runs here; these pin what would be sent to one.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from include.sentinel.dialects.oracle import OracleSentinel
from include.sentinel.sync import SyncPlan, render
from tests.sentinel.dialects.exact_sql import exact_sql_tests

D = OracleSentinel()
T = D.table_ref("hr", "employees")
NAME = """CASE WHEN "FIRST_NAME" IS NULL THEN 'N' ELSE LENGTH("FIRST_NAME") || ':' || "FIRST_NAME" END"""
SALARY = """CASE WHEN "SALARY" IS NULL THEN 'N' ELSE TO_CHAR("SALARY", 'TM9') END"""  # plain: no length prefix
HASH = f"""RAWTOHEX(STANDARD_HASH({NAME} || '|' || {SALARY}, 'MD5'))"""
NUMBER = f"TO_NUMBER(SUBSTR({HASH}, 1, 15), 'XXXXXXXXXXXXXXX')"
COLUMNS = [("first_name", "VARCHAR2"), ("salary", "NUMBER")]

QUERIES = {
    "columns": (
        D.columns_query("hr", "employees"),
        "SELECT column_name, data_type, collation FROM all_tab_columns WHERE owner = :owner AND table_name = :tab "
        "ORDER BY column_id",
        {"owner": "HR", "tab": "EMPLOYEES"},
    ),
    "boundaries": (
        D.boundaries_query(T, ["employee_id"], None, 10000),
        'SELECT "EMPLOYEE_ID" FROM (SELECT "EMPLOYEE_ID", ROW_NUMBER() OVER (ORDER BY "EMPLOYEE_ID") AS rn '
        'FROM "HR"."EMPLOYEES") s WHERE MOD(rn - 1, :chunk) = 0 ORDER BY "EMPLOYEE_ID"',
        {"chunk": 10000},
    ),
    "checksum": (
        D.checksum_sql(T, COLUMNS, ["employee_id"], (100,), (200,), None),
        f"SELECT COUNT(*), COALESCE(SUM({NUMBER}), 0) "
        'FROM "HR"."EMPLOYEES" WHERE "EMPLOYEE_ID" >= :lo0 AND "EMPLOYEE_ID" < :hi0',
        {"lo0": 100, "hi0": 200},
    ),
    "checksum_first_chunk_with_filter": (
        D.checksum_sql(T, COLUMNS, ["employee_id"], None, (100,), "DEPARTMENT_ID = 10"),
        f"SELECT COUNT(*), COALESCE(SUM({NUMBER}), 0) "
        'FROM "HR"."EMPLOYEES" WHERE ("EMPLOYEE_ID" < :hi0) AND (DEPARTMENT_ID = 10)',
        {"hi0": 100},
    ),
    "segment_checksums_composite_key": (
        D.segment_checksums_sql(T, COLUMNS, ["region", "order_no"], ("eu", 5), None, None, [("eu", 9), ("fr", 1)]),
        "SELECT segment, COUNT(*), SUM(h) FROM (SELECT "
        'CASE WHEN ("REGION" < :t1_0 OR ("REGION" = :t1_0 AND "ORDER_NO" < :t1_1)) THEN '
        'CASE WHEN ("REGION" < :t0_0 OR ("REGION" = :t0_0 AND "ORDER_NO" < :t0_1)) THEN 0 ELSE 1 END '
        f"ELSE 2 END AS segment, {NUMBER} AS h "
        'FROM "HR"."EMPLOYEES" WHERE ("REGION" > :lo0 OR ("REGION" = :lo0 AND "ORDER_NO" >= :lo1))) s '
        "GROUP BY segment",
        {"lo0": "eu", "lo1": 5, "t0_0": "eu", "t0_1": 9, "t1_0": "fr", "t1_1": 1},
    ),
    "row_hashes_composite_key": (
        D.row_hashes_sql(T, COLUMNS, ["region", "order_no"], ("eu", 5), ("us", 1), None),
        f'SELECT "REGION", "ORDER_NO", {HASH} FROM "HR"."EMPLOYEES" WHERE '
        '("REGION" > :lo0 OR ("REGION" = :lo0 AND "ORDER_NO" >= :lo1)) AND '
        '("REGION" < :hi0 OR ("REGION" = :hi0 AND "ORDER_NO" < :hi1))',
        {"lo0": "eu", "lo1": 5, "hi0": "us", "hi1": 1},
    ),
    "rows_by_key": (
        D.raw_rows_query(T, COLUMNS, ["region", "order_no"], [("eu", 1), ("us", 2)]),
        'SELECT "REGION", "ORDER_NO", "FIRST_NAME", "SALARY" FROM "HR"."EMPLOYEES" '
        'WHERE ("REGION", "ORDER_NO") IN ((:k0_0, :k0_1), (:k1_0, :k1_1))',
        {"k0_0": "eu", "k0_1": 1, "k1_0": "us", "k1_1": 2},
    ),
}


test_exact_query, test_query_parses = exact_sql_tests(QUERIES, "oracle")


@pytest.mark.parametrize(
    ("declared", "expression", "plain"),
    [
        ("VARCHAR2(30)", '"C"', False),
        ("CHAR", 'RTRIM("C")', False),
        ("DATE", """TO_CHAR("C", 'YYYY-MM-DD"T"HH24:MI:SS')""", True),
        ("TIMESTAMP(6)", """TO_CHAR("C", 'YYYY-MM-DD"T"HH24:MI:SS.FF6')""", True),
        ("TIMESTAMP(6) WITH TIME ZONE", """TO_CHAR(SYS_EXTRACT_UTC("C"), 'YYYY-MM-DD"T"HH24:MI:SS.FF6')""", True),
        ("CLOB", 'RAWTOHEX(DBMS_CRYPTO.HASH("C", 2))', True),
        ("RAW", 'RAWTOHEX("C")', True),
        ("BINARY_DOUBLE", """TO_CHAR("C", 'TM9')""", True),
    ],
)
def test_canonical_values(declared, expression, plain):
    """Free text is length-prefixed; text that can hold neither '|' nor be 'N' is written once."""
    value = expression if plain else f"LENGTH({expression}) || ':' || {expression}"
    assert D.canonical("c", declared) == f"""CASE WHEN "C" IS NULL THEN 'N' ELSE {value} END"""


def test_names_written_in_lower_case_are_oracles_upper_case_names():
    assert (D.table_ref("hr", "employees"), D.table_ref("HR", "Mixed Case")) == (
        '"HR"."EMPLOYEES"',
        '"HR"."Mixed Case"',
    )


def test_sessions_compare_and_sort_in_binary_with_a_dot_for_decimals():
    assert D.session_setup == ("ALTER SESSION SET NLS_SORT = BINARY NLS_COMP = BINARY NLS_NUMERIC_CHARACTERS = '.,'",)


def test_floats_within_a_tolerance_compare_at_significant_digits():
    assert OracleSentinel(float_digits=4).text('"C"', "BINARY_DOUBLE") == """TO_CHAR("C", '9.999EEEE')"""
    assert OracleSentinel(float_digits=4).text('"C"', "NUMBER") == """TO_CHAR("C", 'TM9')"""


def test_the_sync_file():
    plan = SyncPlan(
        table=T,
        label="HR.EMPLOYEES",
        primary_key=["employee_id"],
        columns=["first_name", "salary", "hired", "updated"],
        inserts={(7,): ["O'Brien", Decimal("5000.50"), date(2024, 1, 15), datetime(2024, 1, 15, 10, 30, 0, 123456)]},
        updates={(8,): {"salary": Decimal("6100"), "first_name": None}},
        deletes=[(9,)],
        in_flight=2,
    )
    text = render(
        plan, D, session_id="abc123", generated_at=datetime(2024, 1, 15, 10, 3, 35, tzinfo=UTC), commit_every=2
    )
    assert text == (
        "-- DB Sentinel sync SQL for HR.EMPLOYEES (oracle)\n"
        "-- session abc123, generated 2024-01-15T10:03:35+00:00\n"
        "-- inserts 1, updates 1, deletes 1 (commented out: --allow-deletes), left out in flight 2\n"
        "\n"
        'INSERT INTO "HR"."EMPLOYEES" ("EMPLOYEE_ID", "FIRST_NAME", "SALARY", "HIRED", "UPDATED") VALUES '
        "(7, 'O''Brien', 5000.50, TO_DATE('2024-01-15', 'YYYY-MM-DD'), "
        "TO_TIMESTAMP('2024-01-15 10:30:00.123456', 'YYYY-MM-DD HH24:MI:SS.FF6'));\n"
        'UPDATE "HR"."EMPLOYEES" SET "SALARY" = 6100, "FIRST_NAME" = NULL WHERE "EMPLOYEE_ID" = 8;\n'
        "COMMIT;\n"
        '-- DELETE FROM "HR"."EMPLOYEES" WHERE "EMPLOYEE_ID" = 9;\n'
        "COMMIT;\n"
    )
    for statement in text.splitlines():
        if statement and not statement.startswith("--") and statement != "COMMIT;":
            sqlglot.parse_one(statement.rstrip(";"), read="oracle", error_level=ErrorLevel.RAISE)


def test_long_text_is_built_from_clob_pieces():
    literal = D.literal("x" * 2500 + "'" + "y" * 2000)
    assert literal.startswith("TO_CLOB('xxx") and literal.count("TO_CLOB(") == 5
    assert "''" in literal  # the quote is escaped inside its piece
    sqlglot.parse_one(f"SELECT {literal} FROM dual", read="oracle", error_level=ErrorLevel.RAISE)


def test_time_zoned_timestamps_keep_their_offset():
    assert D.literal(datetime(2024, 1, 15, 10, 30, tzinfo=UTC)) == (
        "TO_TIMESTAMP_TZ('2024-01-15 10:30:00.000000+00:00', 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM')"
    )
