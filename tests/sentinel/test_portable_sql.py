"""The portable canonical text of the engines that do not run here (Oracle, SQL Server, Snowflake) as
exact SQL, parsed by sqlglot in that dialect; and a Databricks SQL side, through a mock connector, as the
exact SQL and binds it is sent."""

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from include.sentinel.compare import fetch
from include.sentinel.dialects import dialect_for
from include.sentinel.dialects.spark import SparkSentinel
from include.sentinel.spark import databricks_connect

ORACLE_NUMBER = "REGEXP_REPLACE(TO_CHAR(\"AMOUNT\", 'TM9'), '^(-?)\\.', '\\10.')"
SQLSERVER_DECIMAL_TEXT = "CONVERT(VARCHAR(64), [amount])"
SQLSERVER_CUT = (
    f"LEFT({SQLSERVER_DECIMAL_TEXT}, LEN({SQLSERVER_DECIMAL_TEXT}) - PATINDEX('%[^0]%', "
    f"REVERSE({SQLSERVER_DECIMAL_TEXT})) + 1)"
)


def oracle_micros(value: str) -> str:
    """Oracle's microseconds since the epoch: the parts of the day-to-second interval since then."""
    since = f"({value} - TIMESTAMP '1970-01-01 00:00:00')"
    return (
        f"EXTRACT(DAY FROM {since}) * 86400000000 + EXTRACT(HOUR FROM {since}) * 3600000000 + "
        f"EXTRACT(MINUTE FROM {since}) * 60000000 + EXTRACT(SECOND FROM {since}) * 1000000"
    )


OPENED_MICROS = oracle_micros('SYS_EXTRACT_UTC("OPENED")')
DAY_MICROS = oracle_micros('CAST("DAY" AS TIMESTAMP)')
CANONICAL = {
    ("oracle", "amount", "NUMBER"): f"CASE WHEN \"AMOUNT\" IS NULL THEN 'N' ELSE {ORACLE_NUMBER} END",
    ("oracle", "score", "BINARY_DOUBLE"): (
        "CASE WHEN \"SCORE\" IS NULL THEN 'N' ELSE CASE WHEN \"SCORE\" = 0 THEN '0' ELSE "
        "LOWER(LTRIM(TO_CHAR(TO_BINARY_DOUBLE(\"SCORE\"), '9.99999999999999EEEE'))) END END"
    ),
    ("oracle", "opened", "TIMESTAMP(6) WITH TIME ZONE"): (
        f"CASE WHEN \"OPENED\" IS NULL THEN 'N' ELSE TO_CHAR(TRUNC(({OPENED_MICROS}) / 1), 'TM9') END"
    ),
    ("oracle", "day", "DATE"): (
        f"CASE WHEN \"DAY\" IS NULL THEN 'N' ELSE TO_CHAR(TRUNC(({DAY_MICROS}) / 1), 'TM9') END"
    ),
    (
        "oracle",
        "data",
        "RAW",
    ): "CASE WHEN \"DATA\" IS NULL THEN 'N' ELSE LOWER(RAWTOHEX(STANDARD_HASH(\"DATA\", 'MD5'))) END",
    ("oracle", "name", "VARCHAR2"): 'CASE WHEN "NAME" IS NULL THEN \'N\' ELSE LENGTH("NAME") || \':\' || "NAME" END',
    (
        "oracle",
        "doc",
        "BLOB",
    ): 'CASE WHEN "DOC" IS NULL THEN \'N\' ELSE LOWER(RAWTOHEX(DBMS_CRYPTO.HASH("DOC", 2))) END',
    ("sqlserver", "amount", "decimal"): (
        f"CASE WHEN [amount] IS NULL THEN 'N' ELSE CASE WHEN CHARINDEX('.', {SQLSERVER_DECIMAL_TEXT}) > 0 THEN "
        f"CASE WHEN RIGHT({SQLSERVER_CUT}, 1) = '.' THEN LEFT({SQLSERVER_CUT}, LEN({SQLSERVER_CUT}) - 1) "
        f"ELSE {SQLSERVER_CUT} END ELSE {SQLSERVER_DECIMAL_TEXT} END END"
    ),
    ("sqlserver", "score", "float"): (
        "CASE WHEN [score] IS NULL THEN 'N' ELSE CASE WHEN [score] = 0 THEN '0' ELSE "
        "REPLACE(REPLACE(LOWER(FORMAT(CAST([score] AS FLOAT), 'E14', 'en-US')), 'e+0', 'e+'), 'e-0', 'e-') END END"
    ),
    ("sqlserver", "active", "bit"): (
        "CASE WHEN [active] IS NULL THEN 'N' ELSE CASE WHEN [active] = 1 THEN 'true' ELSE 'false' END END"
    ),
    ("sqlserver", "id", "bigint"): "CASE WHEN [id] IS NULL THEN 'N' ELSE CONVERT(VARCHAR(20), [id]) END",
    ("sqlserver", "data", "varbinary"): (
        "CASE WHEN [data] IS NULL THEN 'N' ELSE LOWER(CONVERT(VARCHAR(32), HASHBYTES('MD5', [data]), 2)) END"
    ),
    ("snowflake", "amount", "NUMBER"): (
        "CASE WHEN \"AMOUNT\" IS NULL THEN 'N' ELSE IFF(CONTAINS(TO_VARCHAR(\"AMOUNT\"), '.'), "
        "RTRIM(RTRIM(TO_VARCHAR(\"AMOUNT\"), '0'), '.'), TO_VARCHAR(\"AMOUNT\")) END"
    ),
    ("snowflake", "score", "FLOAT"): (
        "CASE WHEN \"SCORE\" IS NULL THEN 'N' ELSE IFF(\"SCORE\" = 0, '0', "
        "LOWER(LTRIM(TO_VARCHAR(\"SCORE\"::DOUBLE, '9.99999999999999EEEE')))) END"
    ),
    (
        "snowflake",
        "active",
        "BOOLEAN",
    ): "CASE WHEN \"ACTIVE\" IS NULL THEN 'N' ELSE IFF(\"ACTIVE\", 'true', 'false') END",
    ("snowflake", "opened", "TIMESTAMP_TZ"): (
        'CASE WHEN "OPENED" IS NULL THEN \'N\' ELSE TO_VARCHAR(DATE_PART(EPOCH_MICROSECOND, "OPENED")) END'
    ),
    ("sqlserver", "opened", "datetimeoffset"): (
        "CASE WHEN [opened] IS NULL THEN 'N' ELSE CONVERT(VARCHAR(20), DATEDIFF_BIG(MICROSECOND, '1970-01-01', "
        "CAST(SWITCHOFFSET([opened], '+00:00') AS DATETIME2(7)))) END"
    ),
    ("snowflake", "data", "BINARY"): 'CASE WHEN "DATA" IS NULL THEN \'N\' ELSE MD5("DATA") END',
}
READ = {"oracle": "oracle", "sqlserver": "tsql", "snowflake": "snowflake"}


@pytest.mark.parametrize("case", sorted(CANONICAL), ids=lambda c: "-".join(c))
def test_portable_canonical_text_is_exact_and_parses(case):
    db_type, column, data_type = case
    sql = dialect_for(db_type, portable=True).canonical(column, data_type)
    assert sql == CANONICAL[case]
    sqlglot.parse_one(f"SELECT {sql} FROM t", read=READ[db_type], error_level=ErrorLevel.RAISE)


def test_the_portable_hashes_are_the_md5_hex_and_its_first_60_bits():
    oracle = dialect_for("oracle", portable=True)
    row = oracle.row_text([("name", "VARCHAR2")])
    assert oracle.row_hash([("name", "VARCHAR2")]) == f"LOWER(RAWTOHEX(STANDARD_HASH({row}, 'MD5')))"
    assert oracle.hash_number([("name", "VARCHAR2")]) == (
        f"TO_NUMBER(UPPER(SUBSTR(LOWER(RAWTOHEX(STANDARD_HASH({row}, 'MD5'))), 1, 15)), 'XXXXXXXXXXXXXXX')"
    )
    sqlserver = dialect_for("sqlserver", portable=True)
    row = sqlserver.row_text([("name", "nvarchar")])
    digest = (
        "LOWER(CONVERT(VARCHAR(32), HASHBYTES('MD5', "
        f"CAST(({row}) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX))), 2))"
    )
    assert sqlserver.row_hash([("name", "nvarchar")]) == digest
    assert sqlserver.hash_number([("name", "nvarchar")]) == (
        f"CAST(CAST(CONVERT(VARBINARY(8), '0' + SUBSTRING({digest}, 1, 15), 2) AS BIGINT) AS DECIMAL(38, 0))"
    )
    snowflake = dialect_for("snowflake", portable=True)
    row = snowflake.row_text([("name", "TEXT")])
    assert snowflake.hash_number([("name", "TEXT")]) == (
        f"TO_NUMBER(UPPER(SUBSTR(MD5({row}), 1, 15)), 'XXXXXXXXXXXXXXX')"
    )


class FakeCursor:
    def __init__(self, sent, answers):
        self.sent, self.answers = sent, answers

    def execute(self, sql, params=None):
        self.sent.append((sql, params))

    def fetchall(self):
        return self.answers.pop(0)

    def close(self):
        pass


class FakeDatabricksSql:
    """databricks.sql: ``connect(**kwargs)`` recorded; every cursor records what it is sent."""

    def __init__(self, answers):
        self.connected, self.sent, self.answers = [], [], answers

    def connect(self, **kwargs):
        self.connected.append(kwargs)
        fake = self

        class Conn:
            closed = False

            def cursor(self):
                return FakeCursor(fake.sent, fake.answers)

            def close(self):
                self.closed = True

        return Conn()


def test_a_databricks_side_is_sent_the_exact_sql_with_native_named_parameters():
    describe = [("id", "int", None), ("name", "string", None), ("", "", ""), ("# Partition Information", "", "")]
    fake = FakeDatabricksSql([describe, [(2, 123)]])
    connect = databricks_connect(
        server_hostname="adb-1.azuredatabricks.net",
        http_path="/sql/1.0/warehouses/abc",
        access_token="canary-databricks-token",
        sql_module=fake,
    )
    dialect = SparkSentinel()
    conn = connect()
    assert conn.autocommit is True  # the comparator's assignment is harmless: reads only
    rows = dialect.column_rows(fetch(conn, *dialect.columns_query("main.bronze", "accounts")))
    table = dialect.table_ref("main.bronze", "accounts")
    assert fetch(conn, *dialect.checksum_sql(table, [("name", "string")], ["id"], (1,), (101,), None)) == [(2, 123)]
    conn.close()

    assert fake.connected == [
        {
            "server_hostname": "adb-1.azuredatabricks.net",
            "http_path": "/sql/1.0/warehouses/abc",
            "access_token": "canary-databricks-token",
        }
    ]
    assert rows == [("id", "int", None), ("name", "string", None)]
    assert fake.sent == [
        ("DESCRIBE TABLE `main`.`bronze`.`accounts`", {}),
        (
            # the row's text is concat() of its columns' (one column here)
            "SELECT COUNT(*), COALESCE(SUM(CAST(conv(substr(md5(concat(CASE WHEN `name` IS NULL THEN 'N' ELSE "
            "concat(char_length(`name`), ':', `name`) END)), 1, 15), 16, 10) AS DECIMAL(19, 0))), 0) "
            "FROM `main`.`bronze`.`accounts` WHERE (`id`) >= (:lo0) AND (`id`) < (:hi0)",
            {"lo0": 1, "hi0": 101},
        ),
    ]


class CatalogConnection:
    """Answers the catalog query with fixed rows (the columns of a table on an engine that is not here)."""

    def __init__(self, rows):
        self.rows, self.sent = rows, []

    def cursor(self):
        return FakeCursor(self.sent, [self.rows])

    def close(self):
        pass


def test_an_oracle_source_s_upper_case_names_meet_a_delta_table_s_lower_case_ones():
    from include.sentinel.compare import TableComparator
    from include.sentinel.config import TableSpec

    oracle = CatalogConnection(
        [("ID", "NUMBER", "USING_NLS_COMP"), ("AMOUNT", "NUMBER", None), ("Mixed", "DATE", None)]
    )
    delta = CatalogConnection(
        [("id", "bigint", None), ("amount", "decimal(12,2)", None), ("Mixed", "timestamp_ntz", None)]
    )
    comparator = TableComparator(
        TableSpec("accounts", ("id",), schema="app", target_schema="main.bronze"),
        lambda: oracle,
        lambda: delta,
        dialect=dialect_for("oracle", portable=True),
        target_dialect=dialect_for("spark"),
    )
    schema = comparator.inspect()
    assert schema.columns == [("amount", "NUMBER"), ("Mixed", "DATE")]
    assert schema.target_columns == [("amount", "decimal(12,2)"), ("Mixed", "timestamp_ntz")]
    assert schema.key_columns == [("id", "NUMBER")] and schema.target_key_columns == [("id", "bigint")]
    assert schema.by_hash  # an Oracle NUMBER key is not known to be whole: key-hash buckets
    assert oracle.sent[-1][0].startswith("SELECT column_name, data_type, collation FROM all_tab_columns")
    assert delta.sent[-1] == ("DESCRIBE TABLE `main`.`bronze`.`accounts`", {})
