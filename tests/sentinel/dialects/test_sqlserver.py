"""SQL Server: the exact SQL of the comparator's queries and of a sync file, each parsed by sqlglot as T-SQL.

No SQL Server runs here; these pin what pymssql would send (``%(name)s`` binds; a % is sent as it is, since
pymssql substitutes binds by pattern).
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from include.sentinel.dialects.sqlserver import SqlServerSentinel
from include.sentinel.sync import SyncPlan, render
from tests.sentinel.dialects.exact_sql import exact_sql_tests

D = SqlServerSentinel()
T = D.table_ref("hr", "employees")
NAME = "CASE WHEN [first_name] IS NULL THEN 'N' ELSE CONCAT(LEN([first_name] + 'x') - 1, ':', [first_name]) END"
SALARY_TEXT = "CONVERT(VARCHAR(64), [salary])"
SALARY = f"CASE WHEN [salary] IS NULL THEN 'N' ELSE {SALARY_TEXT} END"
ROW = f"CONCAT({NAME}, '|', {SALARY})"
NUMBER = f"CAST(CAST(SUBSTRING(HASHBYTES('MD5', {ROW}), 1, 7) AS BIGINT) AS DECIMAL(38, 0))"
COLUMNS = [("first_name", "nvarchar"), ("salary", "decimal")]
KEYS = [("region", "nvarchar"), ("order_no", "int")]
REGION = "CASE WHEN [region] IS NULL THEN 'N' ELSE CONCAT(LEN([region] + 'x') - 1, ':', [region]) END"
KEY_ROW = f"CONCAT({REGION}, '|', CASE WHEN [order_no] IS NULL THEN 'N' ELSE CONVERT(VARCHAR(64), [order_no]) END)"
KEY_NUMBER = f"CAST(CAST(SUBSTRING(HASHBYTES('MD5', {KEY_ROW}), 1, 7) AS BIGINT) AS DECIMAL(38, 0))"
LOWER = "([region] > %(lo0)s OR ([region] = %(lo0)s AND [order_no] >= %(lo1)s))"

QUERIES = {
    "columns": (
        D.columns_query("hr", "employees"),
        "SELECT COLUMN_NAME, DATA_TYPE, COLLATION_NAME FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = COALESCE(%(schema)s, SCHEMA_NAME()) AND TABLE_NAME = %(table)s ORDER BY ORDINAL_POSITION",
        {"schema": "hr", "table": "employees"},
    ),
    "boundaries": (
        D.boundaries_query(T, ["id"], "[active] = 1", 100),
        "SELECT [id] FROM (SELECT [id], ROW_NUMBER() OVER (ORDER BY [id]) AS rn FROM [hr].[employees] "
        "WHERE [active] = 1) s WHERE (rn - 1) % %(chunk)s = 0 ORDER BY [id]",
        {"chunk": 100},
    ),
    "checksum_composite_key": (
        D.checksum_sql(T, COLUMNS, ["region", "order_no"], ("eu", 5), None, None),
        f"SELECT COUNT(*), COALESCE(SUM({NUMBER}), 0) FROM [hr].[employees] WHERE {LOWER}",
        {"lo0": "eu", "lo1": 5},
    ),
    "segment_checksums": (
        D.segment_checksums_sql(T, COLUMNS, ["id"], (1,), (9,), None, [(3,), (6,)]),
        "SELECT segment, COUNT(*), SUM(h) FROM (SELECT CASE WHEN [id] < %(t1_0)s THEN "
        "CASE WHEN [id] < %(t0_0)s THEN 0 ELSE 1 END ELSE 2 END AS segment, "
        f"{NUMBER} AS h FROM [hr].[employees] WHERE [id] >= %(lo0)s AND [id] < %(hi0)s) s GROUP BY segment",
        {"lo0": 1, "hi0": 9, "t0_0": 3, "t1_0": 6},
    ),
    "row_hashes": (
        D.row_hashes_sql(T, COLUMNS, ["id"], (1,), (9,), None),
        f"SELECT [id], CONVERT(VARCHAR(32), HASHBYTES('MD5', {ROW}), 2) FROM [hr].[employees] "
        "WHERE [id] >= %(lo0)s AND [id] < %(hi0)s",
        {"lo0": 1, "hi0": 9},
    ),
    "rows_by_composite_key": (
        D.raw_rows_query(T, COLUMNS, ["region", "order_no"], [("eu", 1), ("us", 2)]),
        "SELECT [region], [order_no], [first_name], [salary] FROM [hr].[employees] WHERE "
        "([region] = %(k0_0)s AND [order_no] = %(k0_1)s) OR ([region] = %(k1_0)s AND [order_no] = %(k1_1)s)",
        {"k0_0": "eu", "k0_1": 1, "k1_0": "us", "k1_1": 2},
    ),
    # key columns collated differently on the two sides: buckets of the key's hash, in one grouped scan
    "bucket_checksums": (
        D.bucket_checksums_sql(T, COLUMNS, KEYS, 64, None),
        f"SELECT b, COUNT(*), SUM(h) FROM (SELECT ({KEY_NUMBER}) % 64 AS b, {NUMBER} AS h FROM [hr].[employees]) s "
        "GROUP BY b",
        {},
    ),
    "bucket_hashes": (
        D.bucket_hashes_sql(T, COLUMNS, KEYS, 64, [3, 17], "[active] = 1"),
        f"SELECT [region], [order_no], h FROM (SELECT [region], [order_no], CONVERT(VARCHAR(32), HASHBYTES('MD5', "
        f"{ROW}), 2) AS h, ({KEY_NUMBER}) % 64 AS b FROM [hr].[employees] WHERE [active] = 1) s WHERE b IN (3, 17)",
        {},
    ),
    "rows_by_key_filtered": (
        D.raw_rows_query(T, COLUMNS, ["id"], [(1,), (2,)], "[active] = 1"),
        "SELECT [id], [first_name], [salary] FROM [hr].[employees] WHERE ([id] IN (%(k0_0)s, %(k1_0)s)) "
        "AND ([active] = 1)",
        {"k0_0": 1, "k1_0": 2},
    ),
}


test_exact_query, test_query_parses = exact_sql_tests(QUERIES, "tsql", marker="@")


@pytest.mark.parametrize(
    ("declared", "text"),
    [
        ("int", "CONVERT(VARCHAR(64), [c])"),
        ("float", "CONVERT(VARCHAR(32), [c], 3)"),
        (
            "datetime2",
            "CONVERT(VARCHAR(19), [c], 126) + '.' + "
            "LEFT(RIGHT('000000' + CAST(DATEPART(MICROSECOND, [c]) AS VARCHAR(6)), 6), 6)",
        ),
        ("date", "CONVERT(VARCHAR(10), [c], 23)"),
        ("nchar", "RTRIM([c])"),
        ("varbinary", "CONVERT(VARCHAR(32), HASHBYTES('MD5', [c]), 2)"),
        ("ntext", "CAST([c] AS NVARCHAR(MAX))"),
        ("uniqueidentifier", "CONVERT(VARCHAR(36), [c])"),
        ("nvarchar", "[c]"),
    ],
)
def test_canonical_text(declared, text):
    assert D.text("[c]", declared) == text


def test_precision_and_float_tolerance():
    assert SqlServerSentinel(timestamp_precision=0).text("[c]", "datetime") == "CONVERT(VARCHAR(19), [c], 126)"
    assert SqlServerSentinel(float_digits=5).text("[c]", "real") == "FORMAT([c], 'E4', 'en-US')"
    utc = SqlServerSentinel(timestamp_precision=3).text("[c]", "datetimeoffset")
    assert utc.startswith("CONVERT(VARCHAR(19), CAST(SWITCHOFFSET([c], '+00:00') AS DATETIME2(7)), 126) + '.' + LEFT(")
    assert utc.endswith(", 3)")


def test_the_sync_file_commits_explicit_transactions():
    plan = SyncPlan(
        table=T,
        label="hr.employees",
        primary_key=["id"],
        columns=["first_name", "salary", "hired", "updated", "photo"],
        inserts={
            (7,): ["O'Brien ☃", Decimal("5000.50"), date(2024, 1, 15), datetime(2024, 1, 15, 10, 30), b"\x01\xff"]
        },
        updates={(8,): {"salary": Decimal("6100"), "updated": datetime(2024, 2, 1, 9, tzinfo=UTC)}},
        deletes=[(9,)],
    )
    text = render(plan, D, session_id="abc", generated_at=datetime(2024, 1, 15, tzinfo=UTC), allow_deletes=True)
    assert text.splitlines()[4:] == [
        "BEGIN TRANSACTION;",
        "INSERT INTO [hr].[employees] ([id], [first_name], [salary], [hired], [updated], [photo]) VALUES "
        "(7, N'O''Brien ☃', 5000.50, CAST('2024-01-15' AS DATE), "
        "CAST('2024-01-15T10:30:00.000000' AS DATETIME2(7)), 0x01FF);",
        "UPDATE [hr].[employees] SET [salary] = 6100, "
        "[updated] = CAST('2024-02-01T09:00:00.000000+00:00' AS DATETIMEOFFSET(7)) WHERE [id] = 8;",
        "DELETE FROM [hr].[employees] WHERE [id] = 9;",
        "COMMIT TRANSACTION;",
    ]
    for statement in text.splitlines()[4:]:
        sqlglot.parse_one(statement.rstrip(";"), read="tsql", error_level=ErrorLevel.RAISE)


def test_bin2_collations_sort_alike_and_others_do_not():
    assert D.sorts_alike("Latin1_General_100_BIN2", "Latin1_General_100_BIN2_UTF8".removesuffix("_UTF8"))
    assert D.sorts_alike("Latin1_General_BIN2", "Japanese_BIN2")
    assert not D.sorts_alike("SQL_Latin1_General_CP1_CI_AS", "Latin1_General_100_BIN2")
    assert not D.sorts_alike("SQL_Latin1_General_CP1_CI_AS", "SQL_Latin1_General_CP1_CS_AS")


def test_pymssql_sends_a_modulo_as_written():
    from pymssql._mssql import substitute_params

    sql, params = D.boundaries_query(T, ["id"], None, 100)
    sent = substitute_params(sql, params).decode()
    assert sent.endswith("WHERE (rn - 1) % 100 = 0 ORDER BY [id]")
    sql, params = D.bucket_checksums_sql(T, COLUMNS, KEYS, 64, None)
    assert substitute_params(sql, params).decode() == sql
