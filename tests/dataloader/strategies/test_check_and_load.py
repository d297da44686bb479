"""check_and_load: no changes, no load."""

from tests.dataloader.conftest import control_row


def test_skips_without_changes_and_loads_when_there_are(loads, source_sql):
    source_sql("CREATE TABLE products (product_id int PRIMARY KEY, price numeric(8,2), updated_at timestamp)")
    source_sql("INSERT INTO products VALUES (1, 9.99, '2024-01-01 10:00'), (2, 5, '2024-01-02 10:00')")
    row = control_row(
        "products",
        "check_and_load",
        incremental_column="updated_at",
        incremental_type="timestamp",
        primary_key_columns=["product_id"],
    )
    first = loads.run(row)
    assert (first.inserted, first.skipped, first.message) == (2, False, "2 changes past the watermark")
    version = loads.version(row)

    quiet = loads.run(row, first.watermark)
    assert quiet.skipped is True
    assert quiet.message == "skipped: no changes past the watermark"
    assert quiet.watermark == first.watermark
    assert first.watermark_rows == quiet.watermark_rows == 1  # product 2, at the watermark in the target
    assert loads.version(row) == version  # nothing was written

    source_sql("UPDATE products SET price = 11, updated_at = '2024-01-03 00:00' WHERE product_id = 1")
    changed = loads.run(row, first.watermark)
    # product 1 changed; product 2 sits at the old watermark and is re-read (inclusive filter)
    assert (changed.skipped, changed.updated, changed.watermark) == (False, 2, "2024-01-03 00:00:00")
    assert changed.watermark_rows == 1
    assert loads.rows(row, "product_id", "price")[0][1] == 11


def test_the_summary_counts_the_target_rows_at_the_watermark_a_late_row_included(loads, source_sql):
    """What a wait outside the load (the DAG's sensor) compares with the source's rows at the watermark."""
    source_sql("CREATE TABLE products (product_id int PRIMARY KEY, updated_at timestamp)")
    source_sql("INSERT INTO products VALUES (1, '2024-01-01 10:00'), (2, '2024-01-02 10:00')")
    row = control_row(
        "products",
        "check_and_load",
        incremental_column="updated_at",
        incremental_type="timestamp",
        primary_key_columns=["product_id"],
    )
    first = loads.run(row)
    assert (first.watermark, first.watermark_rows) == ("2024-01-02 10:00:00", 1)

    source_sql("INSERT INTO products VALUES (3, '2024-01-02 10:00')")  # committed later, at the watermark
    late = loads.run(row, first.watermark)
    assert (late.skipped, late.inserted, late.watermark, late.watermark_rows) == (False, 1, first.watermark, 2)
    assert loads.run(row, late.watermark).skipped is True
