"""Snowflake: the exact SQL of the comparator's queries and of a sync file, each parsed by sqlglot as
Snowflake. No Snowflake account is reachable here; these pin what snowflake-connector-python would send."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from include.sentinel.dialects.snowflake import SnowflakeSentinel
from include.sentinel.sync import SyncPlan, render
from tests.sentinel.dialects.exact_sql import exact_sql_tests

D = SnowflakeSentinel()
T = D.table_ref("hr", "employees")
NAME = """CASE WHEN "FIRST_NAME" IS NULL THEN 'N' ELSE LENGTH("FIRST_NAME") || ':' || "FIRST_NAME" END"""
SALARY = """CASE WHEN "SALARY" IS NULL THEN 'N' ELSE TO_VARCHAR("SALARY") END"""
ROW = f"{NAME} || '|' || {SALARY}"
COLUMNS = [("first_name", "TEXT"), ("salary", "NUMBER")]
KEYS = [("region", "TEXT"), ("order_no", "NUMBER")]
KEY_ROW = (
    """CASE WHEN "REGION" IS NULL THEN 'N' ELSE LENGTH("REGION") || ':' || "REGION" END || '|' || """
    """CASE WHEN "ORDER_NO" IS NULL THEN 'N' ELSE TO_VARCHAR("ORDER_NO") END"""
)

QUERIES = {
    "columns": (
        D.columns_query("hr", "employees"),
        "SELECT column_name, data_type, collation_name FROM information_schema.columns "
        "WHERE table_schema = COALESCE(%(schema)s, CURRENT_SCHEMA()) AND table_name = %(table)s "
        "ORDER BY ordinal_position",
        {"schema": "HR", "table": "EMPLOYEES"},
    ),
    "boundaries": (
        D.boundaries_query(T, ["id"], None, 100),
        'SELECT "ID" FROM (SELECT "ID", ROW_NUMBER() OVER (ORDER BY "ID") AS rn FROM "HR"."EMPLOYEES") s '
        'WHERE MOD(rn - 1, %(chunk)s) = 0 ORDER BY "ID"',
        {"chunk": 100},
    ),
    "checksum": (
        D.checksum_sql(T, COLUMNS, ["id"], None, None, None),
        f'SELECT COUNT(*), COALESCE(SUM(MD5_NUMBER_UPPER64({ROW})), 0) FROM "HR"."EMPLOYEES" WHERE 1 = 1',
        {},
    ),
    "segment_checksums": (
        D.segment_checksums_sql(T, COLUMNS, ["id"], None, (9,), None, [(3,), (6,)]),
        'SELECT segment, COUNT(*), SUM(h) FROM (SELECT CASE WHEN "ID" < %(t1_0)s THEN '
        'CASE WHEN "ID" < %(t0_0)s THEN 0 ELSE 1 END ELSE 2 END AS segment, '
        f'MD5_NUMBER_UPPER64({ROW}) AS h FROM "HR"."EMPLOYEES" WHERE "ID" < %(hi0)s) s GROUP BY segment',
        {"hi0": 9, "t0_0": 3, "t1_0": 6},
    ),
    "row_hashes_composite_key": (
        D.row_hashes_sql(T, COLUMNS, ["region", "order_no"], ("eu", 5), ("us", 1), None),
        f'SELECT "REGION", "ORDER_NO", MD5({ROW}) FROM "HR"."EMPLOYEES" WHERE '
        '("REGION" > %(lo0)s OR ("REGION" = %(lo0)s AND "ORDER_NO" >= %(lo1)s)) AND '
        '("REGION" < %(hi0)s OR ("REGION" = %(hi0)s AND "ORDER_NO" < %(hi1)s))',
        {"lo0": "eu", "lo1": 5, "hi0": "us", "hi1": 1},
    ),
    "rows_by_key": (
        D.raw_rows_query(T, COLUMNS, ["region", "order_no"], [("eu", 1), ("us", 2)]),
        'SELECT "REGION", "ORDER_NO", "FIRST_NAME", "SALARY" FROM "HR"."EMPLOYEES" '
        'WHERE ("REGION", "ORDER_NO") IN ((%(k0_0)s, %(k0_1)s), (%(k1_0)s, %(k1_1)s))',
        {"k0_0": "eu", "k0_1": 1, "k1_0": "us", "k1_1": 2},
    ),
    # key columns collated differently on the two sides: buckets of the key's hash, in one grouped scan
    "bucket_checksums": (
        D.bucket_checksums_sql(T, COLUMNS, KEYS, 64, None),
        f"SELECT b, COUNT(*), SUM(h) FROM (SELECT MOD(MD5_NUMBER_UPPER64({KEY_ROW}), 64) AS b, "
        f'MD5_NUMBER_UPPER64({ROW}) AS h FROM "HR"."EMPLOYEES") s GROUP BY b',
        {},
    ),
    "bucket_hashes": (
        D.bucket_hashes_sql(T, COLUMNS, KEYS, 64, [3, 17], None),
        f'SELECT "REGION", "ORDER_NO", h FROM (SELECT "REGION", "ORDER_NO", MD5({ROW}) AS h, '
        f'MOD(MD5_NUMBER_UPPER64({KEY_ROW}), 64) AS b FROM "HR"."EMPLOYEES") s WHERE b IN (3, 17)',
        {},
    ),
    "bucket_hashes_all": (
        D.bucket_hashes_sql(T, COLUMNS, KEYS, 64, None, None),
        f'SELECT "REGION", "ORDER_NO", MD5({ROW}) FROM "HR"."EMPLOYEES"',
        {},
    ),
}


test_exact_query, test_query_parses = exact_sql_tests(QUERIES, "snowflake")


@pytest.mark.parametrize(
    ("declared", "text"),
    [
        ("TIMESTAMP_NTZ", """TO_VARCHAR("C", 'YYYY-MM-DD"T"HH24:MI:SS.FF6')"""),
        ("TIMESTAMP_TZ", """TO_VARCHAR(CONVERT_TIMEZONE('UTC', "C")::TIMESTAMP_NTZ, 'YYYY-MM-DD"T"HH24:MI:SS.FF6')"""),
        ("DATE", """TO_VARCHAR("C", 'YYYY-MM-DD')"""),
        ("BINARY", 'MD5("C")'),
        ("VARIANT", 'TO_JSON("C")'),
        ("BOOLEAN", 'TO_VARCHAR("C")'),
    ],
)
def test_canonical_text(declared, text):
    assert D.text('"C"', declared) == text


def test_floats_within_a_tolerance_compare_at_significant_digits():
    assert SnowflakeSentinel(float_digits=3).text('"C"', "FLOAT") == """TO_VARCHAR("C", '9.99EEEE')"""


def test_the_sync_file():
    plan = SyncPlan(
        table=T,
        label="hr.employees",
        primary_key=["id"],
        columns=["first_name", "salary", "hired", "updated"],
        inserts={(7,): ["O'Brien", Decimal("5000.50"), date(2024, 1, 15), datetime(2024, 1, 15, 10, 30)]},
        updates={(8,): {"updated": datetime(2024, 2, 1, 9, tzinfo=UTC)}},
        deletes=[(9,)],
    )
    text = render(plan, D, session_id="abc", generated_at=datetime(2024, 1, 15, tzinfo=UTC))
    assert text.splitlines()[4:] == [
        'INSERT INTO "HR"."EMPLOYEES" ("ID", "FIRST_NAME", "SALARY", "HIRED", "UPDATED") VALUES '
        "(7, 'O\\'Brien', 5000.50, TO_DATE('2024-01-15', 'YYYY-MM-DD'), "
        "TO_TIMESTAMP_NTZ('2024-01-15 10:30:00.000000', 'YYYY-MM-DD HH24:MI:SS.FF6'));",
        'UPDATE "HR"."EMPLOYEES" SET "UPDATED" = '
        "TO_TIMESTAMP_TZ('2024-02-01 09:00:00.000000+00:00', 'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM') WHERE \"ID\" = 8;",
        '-- DELETE FROM "HR"."EMPLOYEES" WHERE "ID" = 9;',
        "COMMIT;",
    ]
    for statement in text.splitlines()[4:6]:
        sqlglot.parse_one(statement.rstrip(";"), read="snowflake", error_level=ErrorLevel.RAISE)


def test_no_collation_and_utf8_sort_alike_and_others_do_not():
    assert D.sorts_alike(None, "utf8")
    assert not D.sorts_alike(None, "en-ci")
    assert D.sorts_alike("en-ci", "en-ci")
