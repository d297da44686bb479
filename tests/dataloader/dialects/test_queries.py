"""The exact SQL of each strategy's queries in all five dialects, and each parsed back by sqlglot."""

import pytest
import sqlglot

from include.dataloader.dialects import DIALECTS, dialect_for
from include.dataloader.queries import Cursor, SourceQueries

MODIFIED = Cursor("Modified Date", "timestamp")
MODIFIED_TZ = Cursor("changed_at", "timestamp", with_time_zone=True)
ORDER_ID = Cursor("order_id", "integer")
BOOKED = Cursor("booked_on", "date")
WATERMARK = "2024-01-15 10:30:00.123456"


def queries(db_type):
    return SourceQueries(dialect_for(db_type), "sales", "order lines", ["order_id", "Modified Date"])


CASES = {
    "since_timestamp": (
        lambda q: q.since(MODIFIED, WATERMARK),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE [Modified Date] >= CAST('2024-01-15T10:30:00.123456' AS DATETIME2(7))",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= TO_TIMESTAMP(\'2024-01-15 10:30:00.123456\', \'YYYY-MM-DD HH24:MI:SS.FF6\')',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= CAST(\'2024-01-15 10:30:00.123456\' AS TIMESTAMP)',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= CAST(\'2024-01-15 10:30:00.123456\' AS TIMESTAMPNTZ(9))',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= toDateTime64(\'2024-01-15 10:30:00.123456\', 6)',
        },
    ),
    "since_timestamp_with_time_zone": (
        lambda q: q.since(MODIFIED_TZ, "2024-01-15 10:30:00.5+02:00"),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE [changed_at] >= CAST('2024-01-15T10:30:00.500000+02:00' AS DATETIMEOFFSET(7))",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= TO_TIMESTAMP_TZ(\'2024-01-15 10:30:00.500000+02:00\', \'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM\')',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= CAST(\'2024-01-15 10:30:00.500000+02:00\' AS TIMESTAMPTZ)',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= CAST(\'2024-01-15 10:30:00.500000+02:00\' AS TIMESTAMPTZ(9))',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= toDateTime64(\'2024-01-15 08:30:00.500000\', 6, \'UTC\')',
        },
    ),
    "since_integer": (
        lambda q: q.since(ORDER_ID, "1000"),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE [order_id] >= 1000",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 1000',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 1000',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 1000',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 1000',
        },
    ),
    "rolling_window_date": (
        lambda q: q.window(BOOKED, "2024-01-08"),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE [booked_on] >= CAST('2024-01-08' AS DATE)",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "booked_on" >= TO_DATE(\'2024-01-08\', \'YYYY-MM-DD\')',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "booked_on" >= CAST(\'2024-01-08\' AS DATE)',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "booked_on" >= CAST(\'2024-01-08\' AS DATE)',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "booked_on" >= toDate(\'2024-01-08\')',
        },
    ),
    "first_chunk": (
        lambda q: q.chunk(ORDER_ID, None, 100001),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE ([order_id] < 100001) OR [order_id] IS NULL",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE ("order_id" < 100001) OR "order_id" IS NULL',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE ("order_id" < 100001) OR "order_id" IS NULL',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE ("order_id" < 100001) OR "order_id" IS NULL',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE ("order_id" < 100001) OR "order_id" IS NULL',
        },
    ),
    "middle_chunk_timestamp": (
        lambda q: q.chunk(MODIFIED, "2024-01-01 00:00:00", "2024-01-31 00:00:00"),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE [Modified Date] >= CAST('2024-01-01T00:00:00.000000' AS DATETIME2(7)) AND [Modified Date] < CAST('2024-01-31T00:00:00.000000' AS DATETIME2(7))",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= TO_TIMESTAMP(\'2024-01-01 00:00:00.000000\', \'YYYY-MM-DD HH24:MI:SS.FF6\') AND "Modified Date" < TO_TIMESTAMP(\'2024-01-31 00:00:00.000000\', \'YYYY-MM-DD HH24:MI:SS.FF6\')',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= CAST(\'2024-01-01 00:00:00.000000\' AS TIMESTAMP) AND "Modified Date" < CAST(\'2024-01-31 00:00:00.000000\' AS TIMESTAMP)',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= CAST(\'2024-01-01 00:00:00.000000\' AS TIMESTAMPNTZ(9)) AND "Modified Date" < CAST(\'2024-01-31 00:00:00.000000\' AS TIMESTAMPNTZ(9))',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "Modified Date" >= toDateTime64(\'2024-01-01 00:00:00.000000\', 6) AND "Modified Date" < toDateTime64(\'2024-01-31 00:00:00.000000\', 6)',
        },
    ),
    "last_chunk": (
        lambda q: q.chunk(ORDER_ID, 900001, None),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE [order_id] >= 900001",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 900001',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 900001',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 900001',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "order_id" >= 900001',
        },
    ),
    "window_without_offset_on_a_time_zone_column": (  # the loader's clock is UTC: the literal says so
        lambda q: q.window(MODIFIED_TZ, "2024-01-13 00:00:00"),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines] WHERE [changed_at] >= CAST('2024-01-13T00:00:00.000000+00:00' AS DATETIMEOFFSET(7))",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= TO_TIMESTAMP_TZ(\'2024-01-13 00:00:00.000000+00:00\', \'YYYY-MM-DD HH24:MI:SS.FF6TZH:TZM\')',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= CAST(\'2024-01-13 00:00:00.000000+00:00\' AS TIMESTAMPTZ)',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= CAST(\'2024-01-13 00:00:00.000000+00:00\' AS TIMESTAMPTZ(9))',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines" WHERE "changed_at" >= toDateTime64(\'2024-01-13 00:00:00.000000\', 6, \'UTC\')',
        },
    ),
    "change_count": (
        lambda q: q.change_count(MODIFIED, WATERMARK),
        {
            "sqlserver": "SELECT COUNT(*) AS changes FROM [sales].[order lines] WHERE [Modified Date] > CAST('2024-01-15T10:30:00.123456' AS DATETIME2(7))",
            "oracle": 'SELECT COUNT(*) AS changes FROM "sales"."order lines" WHERE "Modified Date" > TO_TIMESTAMP(\'2024-01-15 10:30:00.123456\', \'YYYY-MM-DD HH24:MI:SS.FF6\')',
            "postgresql": 'SELECT COUNT(*) AS changes FROM "sales"."order lines" WHERE "Modified Date" > CAST(\'2024-01-15 10:30:00.123456\' AS TIMESTAMP)',
            "snowflake": 'SELECT COUNT(*) AS changes FROM "sales"."order lines" WHERE "Modified Date" > CAST(\'2024-01-15 10:30:00.123456\' AS TIMESTAMPNTZ(9))',
            "clickhouse": 'SELECT COUNT(*) AS changes FROM "sales"."order lines" WHERE "Modified Date" > toDateTime64(\'2024-01-15 10:30:00.123456\', 6)',
        },
    ),
    "change_count_at_watermark": (  # check_and_load: rows past the watermark, and rows at it, in one scan
        lambda q: q.change_count(ORDER_ID, "900001", at_watermark=True),
        {
            "sqlserver": "SELECT COUNT(CASE WHEN [order_id] > 900001 THEN 1 END) AS changes, COUNT(CASE WHEN [order_id] = 900001 THEN 1 END) AS at_watermark FROM [sales].[order lines] WHERE [order_id] >= 900001",
            "oracle": 'SELECT COUNT(CASE WHEN "order_id" > 900001 THEN 1 END) AS changes, COUNT(CASE WHEN "order_id" = 900001 THEN 1 END) AS at_watermark FROM "sales"."order lines" WHERE "order_id" >= 900001',
            "postgresql": 'SELECT COUNT(CASE WHEN "order_id" > 900001 THEN 1 END) AS changes, COUNT(CASE WHEN "order_id" = 900001 THEN 1 END) AS at_watermark FROM "sales"."order lines" WHERE "order_id" >= 900001',
            "snowflake": 'SELECT COUNT(CASE WHEN "order_id" > 900001 THEN 1 END) AS changes, COUNT(CASE WHEN "order_id" = 900001 THEN 1 END) AS at_watermark FROM "sales"."order lines" WHERE "order_id" >= 900001',
            "clickhouse": 'SELECT COUNT(CASE WHEN "order_id" > 900001 THEN 1 END) AS changes, COUNT(CASE WHEN "order_id" = 900001 THEN 1 END) AS at_watermark FROM "sales"."order lines" WHERE "order_id" >= 900001',
        },
    ),
    "bounds": (
        lambda q: q.bounds(ORDER_ID),
        {
            "sqlserver": "SELECT MIN([order_id]) AS lower_bound, MAX([order_id]) AS upper_bound FROM [sales].[order lines]",
            "oracle": 'SELECT MIN("order_id") AS lower_bound, MAX("order_id") AS upper_bound FROM "sales"."order lines"',
            "postgresql": 'SELECT MIN("order_id") AS lower_bound, MAX("order_id") AS upper_bound FROM "sales"."order lines"',
            "snowflake": 'SELECT MIN("order_id") AS lower_bound, MAX("order_id") AS upper_bound FROM "sales"."order lines"',
            "clickhouse": 'SELECT MIN("order_id") AS lower_bound, MAX("order_id") AS upper_bound FROM "sales"."order lines"',
        },
    ),
    "full": (
        lambda q: q.full(),
        {
            "sqlserver": "SELECT [order_id], [Modified Date] FROM [sales].[order lines]",
            "oracle": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines"',
            "postgresql": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines"',
            "snowflake": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines"',
            "clickhouse": 'SELECT "order_id", "Modified Date" FROM "sales"."order lines"',
        },
    ),
}

PARAMS = [(name, db_type) for name in CASES for db_type in DIALECTS]


@pytest.mark.parametrize(("case", "db_type"), PARAMS, ids=[f"{c}-{d}" for c, d in PARAMS])
def test_exact_sql(case, db_type):
    build, expected = CASES[case]
    assert build(queries(db_type)) == expected[db_type]


@pytest.mark.parametrize(("case", "db_type"), PARAMS, ids=[f"{c}-{d}" for c, d in PARAMS])
def test_sql_parses_back_in_its_dialect(case, db_type):
    build, _ = CASES[case]
    sql = build(queries(db_type))
    dialect = dialect_for(db_type).sqlglot
    assert sqlglot.parse_one(sql, read=dialect).sql(dialect=dialect) == sql


def test_a_first_load_reads_everything():
    assert (
        queries("postgresql").since(MODIFIED, None) == 'SELECT "order_id", "Modified Date" FROM "sales"."order lines"'
    )


def test_identifiers_are_quoted_not_injected():
    hostile = SourceQueries(dialect_for("sqlserver"), "dbo", "t]; DROP TABLE x; --", ["a]b"])
    assert hostile.full() == "SELECT [a]]b] FROM [dbo].[t]]; DROP TABLE x; --]"
    oracle = SourceQueries(dialect_for("oracle"), None, 'x" OR 1=1 --', ["c"])
    assert (
        oracle.change_count(Cursor("c", "integer"), "5")
        == 'SELECT COUNT(*) AS changes FROM "x"" OR 1=1 --" WHERE "c" > 5'
    )


def test_a_watermark_that_is_not_a_number_is_refused_not_rendered():
    with pytest.raises(ValueError):
        queries("postgresql").since(ORDER_ID, "1; DROP TABLE orders")


def test_a_column_read_as_text_is_cast_in_the_query_under_its_own_name():
    q = SourceQueries(
        dialect_for("postgresql"), "public", "devices", ["device_id", "seen at"], frozenset({"device_id"})
    )
    assert q.full() == 'SELECT CAST("device_id" AS TEXT) AS "device_id", "seen at" FROM "public"."devices"'
