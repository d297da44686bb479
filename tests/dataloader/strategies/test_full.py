"""full: an atomic overwrite."""

import pytest
from pyspark.sql import functions as F

from tests.dataloader.conftest import control_row


@pytest.fixture
def customers(source_sql):
    source_sql('CREATE TABLE customers (customer_id int PRIMARY KEY, name text, "Credit Limit" numeric(10,2))')
    source_sql("INSERT INTO customers VALUES (1, 'Ada', 100), (2, 'Grace', 200)")
    return control_row("customers", "full")


def test_each_load_replaces_the_table_with_the_source(loads, customers, source_sql):
    first = loads.run(customers)
    assert (first.rows_read, first.inserted) == (2, 2)

    source_sql("DELETE FROM customers WHERE customer_id = 1")
    source_sql("UPDATE customers SET name = 'Grace H.' WHERE customer_id = 2")
    source_sql("INSERT INTO customers VALUES (3, 'Edsger', NULL)")
    loads.run(customers)

    assert loads.rows(customers, "customer_id", "name") == [(2, "Grace H."), (3, "Edsger")]
    assert "Credit_Limit" in loads.schema(customers)  # a space is not valid in a Delta column name


def test_each_load_is_one_commit_and_no_version_is_empty(loads, customers, source_sql, spark, warehouse):
    loads.run(customers)
    source_sql("INSERT INTO customers SELECT g, 'n' || g, g FROM generate_series(3, 50) g")
    loads.run(customers)

    path = str(warehouse.path(loads.context(customers).target))
    assert loads.version(customers) == 1  # versions 0 and 1: one commit per load, no truncate in between
    counts = [spark.read.format("delta").option("versionAsOf", v).load(path).count() for v in (0, 1)]
    assert counts == [2, 50]


def test_a_rerun_gives_the_same_table(loads, customers):
    loads.run(customers)
    before = loads.rows(customers)
    loads.run(customers)
    assert loads.rows(customers) == before


def test_a_column_dropped_at_the_source_stays_in_the_target_as_null(loads, customers, source_sql, warehouse):
    loads.run(customers)
    source_sql('ALTER TABLE customers DROP COLUMN "Credit Limit"')
    loads.run(customers)

    df = warehouse.read(loads.context(customers).target)
    assert df.where(F.col("Credit_Limit").isNotNull()).count() == 0
    assert df.count() == 2
