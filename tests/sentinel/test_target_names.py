"""Columns the target names otherwise (``TableSpec.target_names``): the target's queries, catalog check,
re-verification and sync SQL use its names; keys, differing columns and reports stay in the source's."""

import json
from datetime import UTC, datetime

import psycopg
import pytest

from include.sentinel.compare import Chunk, CompareError, Schema, TableComparator, TableComparison
from include.sentinel.config import ConfigError, TableSpec, parse_config
from include.sentinel.dialects import dialect_for
from include.sentinel.dialects.postgres import PostgresSentinel
from include.sentinel.dialects.spark import SparkSentinel
from include.sentinel.sync import sync_sql
from include.sentinel.verify import Verified, reverify

NAMES = {"Order Id": "order_id", "Order Date": "order_date"}


def comparator(pair, names=NAMES, *, chunk_size=50, columns=None):
    spec = TableSpec(
        table_name="orders", primary_key=("Order Id",), chunk_size=chunk_size, columns=columns, target_names=names
    )
    return TableComparator(
        spec,
        lambda: psycopg.connect(pair.urls["source"]),
        lambda: psycopg.connect(pair.urls["target"]),
        max_threads=2,
    )


@pytest.fixture
def orders(pair):
    """orders on both databases, the source's key and date column named with spaces, the target's not."""
    pair.sql("source", 'CREATE TABLE orders ("Order Id" int PRIMARY KEY, "Order Date" date, status text)')
    pair.sql("target", "CREATE TABLE orders (order_id int PRIMARY KEY, order_date date, status text)")
    for side in ("source", "target"):
        pair.sql(side, "INSERT INTO orders SELECT g, date '2024-01-01' + g, 's' || g FROM generate_series(1, 400) g")
    return pair


@pytest.mark.parametrize("chunk_size", [50, 1000])  # spans of chunks; one chunk of segments
def test_drift_in_renamed_columns_is_found_reverified_and_synced_by_the_targets_names(orders, chunk_size):
    orders.sql("target", "UPDATE orders SET order_date = date '2000-01-01' WHERE order_id IN (7, 250)")
    orders.sql("target", "DELETE FROM orders WHERE order_id = 12")
    orders.sql("target", "INSERT INTO orders VALUES (900, date '2024-06-01', 'dr only')")
    c = comparator(orders, chunk_size=chunk_size)
    result = c.compare()

    assert result.columns == [("Order Date", "date"), ("status", "text")]  # the source's names
    assert result.keys("different") == [(7,), (250,)]
    assert result.keys("missing_in_target") == [(12,)]
    assert result.keys("missing_in_source") == [(900,)]
    assert c.differing_columns([(7,), (250,)], result.columns) == {(7,): ["Order Date"], (250,): ["Order Date"]}
    verified = reverify(c, result)
    assert (verified.valid_update_pks, verified.safe_to_insert, verified.valid_delete_pks) == (
        [(7,), (250,)],
        [(12,)],
        [(900,)],
    )
    sql = sync_sql(
        c, result, verified, session_id="s1", generated_at=datetime(2024, 1, 1, tzinfo=UTC), allow_deletes=True
    )
    assert 'UPDATE "orders" SET "order_date" = ' in sql and 'WHERE "order_id" = 7;' in sql
    assert 'INSERT INTO "orders" ("order_id", "order_date", "status") VALUES (12, ' in sql
    assert "Order" not in sql.replace("orders", "")
    with psycopg.connect(orders.urls["target"]) as conn:
        conn.execute(sql)
    assert all(ch.equal for ch in comparator(orders, chunk_size=chunk_size).compare().chunks)


def test_the_catalog_check_names_each_column_as_its_side_has_it(orders):
    with pytest.raises(CompareError, match=r"'Order Id' not found in the target; fix primary_key or target_names"):
        comparator(orders, names={"Order Date": "order_date"}).compare()  # the key's rename left out
    with pytest.raises(CompareError, match=r"column 'order_dt' is missing in the target; .*fix target_names"):
        comparator(orders, {"Order Id": "order_id", "Order Date": "order_dt"}, columns=("Order Date",)).compare()
    orders.sql("target", "ALTER TABLE orders ALTER COLUMN order_date TYPE text")
    with pytest.raises(
        CompareError, match=r"column 'Order Date' \(the target's 'order_date'\): date \(source\) vs text"
    ):
        comparator(orders).compare()


def test_the_target_side_of_each_query_quotes_the_targets_names():
    """A PostgreSQL source against a Spark (Delta) target: each side's SQL names the columns as it has them."""
    spec = TableSpec(table_name="orders", primary_key=("Order Id",), target_table="bronze.orders", target_names=NAMES)
    c = TableComparator(spec, object, object, dialect=PostgresSentinel(portable=True), target_dialect=SparkSentinel())
    columns = [("Order Date", "date"), ("status", "text")]
    c.schema = Schema(
        columns,
        [("Order Id", "integer")],
        target_columns=[("Order Date", "date"), ("status", "string")],
        target_key_columns=[("Order Id", "int")],
        target_names={"Order Id": "Order_Id", "Order Date": "Order_Date"},
    )
    sent = []

    def answer(side, query, binary=False):
        sent.append((side, query[0]))
        return [(1, 2)] if "GROUP BY" not in query[0] else []

    c._fetch = answer
    c.compare_chunk(Chunk(0, None, (100,)), columns)  # a checksum of the key range
    c.compare_chunk(Chunk(0, None, None, buckets=4), columns)  # a checksum per bucket of the key's hash
    c.close()
    target = [q for side, q in sent if side == "target"]
    source = [q for side, q in sent if side == "source"]
    assert len(target) == len(source) == 2
    for query in target:
        assert "`Order_Id`" in query and "`Order_Date`" in query and "`status`" in query
        assert "Order Id" not in query and "Order Date" not in query
    for query in source:
        assert '"Order Id"' in query and '"Order Date"' in query
    assert target[0].endswith("WHERE (`Order_Id`) < (:hi0)")  # the key range on the target's key


def test_target_names_in_the_config_are_validated():
    raw = {
        "source_database": {"db_type": "postgresql", "url_env": "SRC"},
        "target_database": {"db_type": "postgresql", "url_env": "TGT"},
        "tables": [{"table_name": "orders", "primary_key": "Order Id", "target_names": {"Order Id": "order_id"}}],
    }
    assert parse_config(raw).tables[0].target_names == {"Order Id": "order_id"}
    raw["tables"][0]["target_names"] = ["order_id"]
    with pytest.raises(ConfigError, match="table orders: target_names must map source column names"):
        parse_config(raw)
    raw["tables"][0]["target_names"] = {"a": "x", "b": "x"}
    with pytest.raises(ConfigError, match="maps two source columns to one target column"):
        parse_config(raw)
    raw["tables"][0]["target_names"] = {"a": "x; DROP TABLE t"}
    with pytest.raises(ConfigError, match=r"target_names\['a'\] 'x; DROP TABLE t' holds"):
        parse_config(raw)


def test_a_stored_plan_keeps_the_targets_names_for_a_resume():
    from include.sentinel.codec import decode_plan, encode_plan

    schema = Schema([("Order Date", "date")], [("Order Id", "integer")], target_names={"Order Id": "order_id"})
    stored, _ = decode_plan(json.loads(json.dumps(encode_plan("orders", schema, [Chunk(0, None, None)]))))
    assert stored.side_pk("target") == ["order_id"]
    assert stored.side_columns("target", stored.columns) == [("Order Date", "date")]
    assert stored.side_pk("source") == ["Order Id"]


class ScriptedTarget:
    """A target engine that is not here (Oracle, Snowflake): every statement sent is recorded, and each query
    is answered by ``answer(sql)``."""

    def __init__(self, answer):
        self.answer, self.sent, self.autocommit = answer, [], False

    def cursor(self):
        target = self

        class Cursor:
            def execute(self, sql, params=None):
                target.sent.append(sql)
                self.rows = target.answer(sql)

            def fetchall(self):
                return self.rows

            def close(self):
                pass

        return Cursor()

    def close(self):
        pass


CATALOGS = {  # the target's columns as its catalog answers: stored in upper case
    "oracle": [("ORDER_ID", "NUMBER", None), ("ORDER_DATE", "DATE", None), ("STATUS", "VARCHAR2", None)],
    "snowflake": [("ORDER_ID", "NUMBER", None), ("ORDER_DATE", "DATE", None), ("STATUS", "TEXT", None)],
}


@pytest.mark.parametrize("db_type", ["oracle", "snowflake"])
def test_an_upper_case_target_is_read_and_synced_by_its_own_names(orders, db_type, caplog):
    """A PostgreSQL source whose key and date columns are renamed on an Oracle or Snowflake target (names
    stored in upper case there): the catalog's ORDER_ID meets ``target_names``' order_id, and the target's
    checksums, row reads and sync statements quote the target's names, never the source's."""

    def answer(sql):
        if "column_name" in sql:
            return CATALOGS[db_type]
        if " IN (" in sql and "GROUP BY" not in sql:  # the rows of key 7, in canonical text: another date
            return [(7, changed_date, status)]
        return []  # no checksums, no rows: every source row is missing on the target

    target = ScriptedTarget(answer)
    spec = TableSpec(table_name="orders", primary_key=("Order Id",), target_names=NAMES)
    c = TableComparator(
        spec,
        lambda: psycopg.connect(orders.urls["source"]),
        lambda: target,
        dialect=dialect_for("postgresql", portable=True),
        target_dialect=dialect_for(db_type, portable=True),
        max_threads=1,
    )
    schema = c.inspect()
    [(date_text, status)] = c.rows(c.source, [(7,)], schema.columns, canonical=True).values()
    changed_date = date_text.replace("2024-01-08", "2000-01-01")
    assert changed_date != date_text
    assert schema.columns == [("Order Date", "date"), ("status", "text")]
    assert schema.side_pk("target") == ["order_id"]  # folded to the spelling target_names uses
    assert schema.by_hash  # a NUMBER key is not known to be whole: buckets of the key's hash
    assert "orders: the key is not whole numbers on both engines: chunks are key-hash buckets" in caplog.text

    result = c.compare_chunk(Chunk(0, None, None, buckets=4), schema.columns)
    assert (result.source_rows, result.target_rows, len(result.missing_in_target)) == (400, 0, 400)
    reads = [sql for sql in target.sent if "column_name" not in sql and not sql.startswith("ALTER SESSION")]
    assert len(reads) == 2  # the bucket checksums, then the rows' (key, hash) of every bucket
    for sql in reads:
        assert '"ORDER_ID"' in sql and '"ORDER_DATE"' in sql and '"STATUS"' in sql
        assert "Order" not in sql and '"order_id"' not in sql
        assert 'FROM "ORDERS"' in sql

    verified = Verified(valid_update_pks=[(7,)], safe_to_insert=[(12,)], valid_delete_pks=[(900,)])
    comparison = TableComparison(spec, schema.columns, [result], 0.0, schema)
    sql = sync_sql(c, comparison, verified, session_id="s1", generated_at=datetime(2024, 1, 1, tzinfo=UTC))
    c.close()
    assert """UPDATE "ORDERS" SET "ORDER_DATE" = TO_DATE('2024-01-08', 'YYYY-MM-DD') WHERE "ORDER_ID" = 7;""" in sql
    assert 'INSERT INTO "ORDERS" ("ORDER_ID", "ORDER_DATE", "STATUS") VALUES (12, ' in sql
    assert '-- DELETE FROM "ORDERS" WHERE "ORDER_ID" = 900;' in sql
    assert "Order" not in sql.replace("orders", "")
    key_reads = [s for s in target.sent if '"ORDER_ID" IN' in s or '"ORDER_ID" =' in s]
    assert key_reads and all("Order" not in s for s in key_reads)
