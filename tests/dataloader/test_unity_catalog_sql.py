"""What the Databricks engine sends to Unity Catalog, as text, parsed by sqlglot's Databricks dialect.

The strategies run for real (PostgreSQL source, Sail, Delta) with the ``UnityCatalog`` warehouse over a
recording session: every SQL statement, ``saveAsTable`` and ``tableExists`` it sends is recorded as
Databricks would receive it, then carried out on local Delta tables. The table is ``bronze.select.order``
(two reserved words): every three-part name must be quoted, part by part.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from pyspark.sql.connect.readwriter import DataFrameWriter
from sqlglot import exp

from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.readers import local_reader
from include.dataloader.source import SourceTable
from include.dataloader.staging import ExtractStaging
from include.dataloader.strategies import STRATEGIES
from include.dataloader.strategies.base import LoadContext
from include.dataloader.target import LocalWarehouse, TableName, UnityCatalog
from tests.dataloader.conftest import FIXED_NOW, control_row

UC_REF = re.compile(r"`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`")
TARGET = "`bronze`.`select`.`order`"


class RecordingSpark:
    """A Spark session as ``UnityCatalog`` uses it: records what is sent, runs it on local Delta tables."""

    def __init__(self, spark, local: LocalWarehouse):
        self._spark = spark
        self.local = local
        self.sent: list[tuple[str, str]] = []  # (what, text): sql, saveAsTable, tableExists, replaceWhere
        self.catalog = _Catalog(self)

    def __getattr__(self, name):
        return getattr(self._spark, name)

    def sql(self, text: str):
        self.sent.append(("sql", text))
        statement = sqlglot.parse_one(text, read="databricks")
        if isinstance(statement, exp.Alter):  # Sail has no ALTER TABLE ... ADD COLUMNS
            columns = [(c.name, c.args["kind"].sql("spark").lower()) for c in statement.find_all(exp.ColumnDef)]
            return self.local.add_columns(table_name(statement.find(exp.Table)), columns)
        if isinstance(statement, exp.Drop):
            return self.local.drop(table_name(statement.find(exp.Table)))
        table = statement.find(exp.Table)
        if table is not None and (table.db, table.name) == ("information_schema", "tables"):
            schema = statement.find(exp.EQ).expression.name
            folder = self.local.root / table.catalog / schema
            names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            return self._spark.createDataFrame([(n,) for n in names], "table_name string")
        return self._spark.sql(UC_REF.sub(lambda m: self.local.ref(TableName(*m.groups())), text))


class _Catalog:
    def __init__(self, session: RecordingSpark):
        self.session = session

    def tableExists(self, name: str) -> bool:
        self.session.sent.append(("tableExists", name))
        return self.session.local.exists(table_name(parse_table(name)))


def parse_table(name: str) -> exp.Table:
    return sqlglot.parse_one(f"SELECT * FROM {name}", read="databricks").find(exp.Table)


def table_name(table: exp.Table) -> TableName:
    return TableName(table.catalog, table.db, table.name)


@pytest.fixture
def recording(spark, tmp_path, monkeypatch) -> RecordingSpark:
    session = RecordingSpark(spark, LocalWarehouse(spark, tmp_path / "warehouse"))

    def save_as_table(writer: DataFrameWriter, name: str, *args, **kwargs):
        session.sent.append(("saveAsTable", name))
        if "replaceWhere" in writer._write.options:
            session.sent.append(("replaceWhere", writer._write.options["replaceWhere"]))
        writer.save(str(session.local.path(table_name(parse_table(name)))))

    monkeypatch.setattr(DataFrameWriter, "saveAsTable", save_as_table)
    return session


@pytest.fixture
def run(recording, source_url, tmp_path):
    def run(row, watermark=None):
        dialect, staging = dialect_for("postgresql"), ExtractStaging(tmp_path / "extract")
        reader = local_reader(recording._spark, dialect, ConnectionParams(url=source_url), staging)
        ctx = LoadContext(SourceTable(row, dialect_for("postgresql"), reader), UnityCatalog(recording), now=FIXED_NOW)
        start = len(recording.sent)
        summary = STRATEGIES[row.load_strategy](ctx, watermark)
        return summary, recording.sent[start:]

    return run


def assert_databricks_sql(sent: list[tuple[str, str]]) -> None:
    """Every statement is Databricks SQL (no sqlglot fallback to an opaque command), and every table it
    names is a three-part Unity Catalog name with each part quoted."""
    for what, text in sent:
        if what == "replaceWhere":
            predicate = sqlglot.parse_one(text, read="databricks")
            assert all(c.this.quoted for c in predicate.find_all(exp.Column)), text
            continue
        statement = parse_table(text) if what != "sql" else sqlglot.parse_one(text, read="databricks")
        assert not isinstance(statement, exp.Command), text
        tables = [statement] if isinstance(statement, exp.Table) else list(statement.find_all(exp.Table))
        assert tables, text
        for table in tables:
            parts = [table.args.get("catalog"), table.args.get("db"), table.this]
            assert all(p is not None and p.quoted for p in parts), (
                f"unquoted or not three-part: {table.sql()} in {text}"
            )
            if (table.db, table.name) == ("information_schema", "tables"):  # the staging tables' listing
                assert table.catalog == "bronze", text
                continue
            assert (table.catalog, table.db) == ("bronze", "select") and table.name.startswith("order"), text


def statements(sent, prefix: str) -> list[str]:
    return [text for what, text in sent if what == "sql" and text.lstrip().startswith(prefix)]


@pytest.fixture
def orders(source_sql):
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, status text, updated_at timestamp(6))")
    source_sql(
        "INSERT INTO orders SELECT g, 'new', timestamp '2024-01-01' + g * interval '1 hour' "
        "FROM generate_series(1, 6) g"
    )

    def row(strategy: str, **fields):
        settings = {
            "incremental_column": "updated_at",
            "incremental_type": "timestamp",
            "primary_key_columns": ["order_id"],
        }
        settings.update(fields)
        return control_row("orders", strategy, destination_schema="select", destination_table_name="order", **settings)

    return row


def test_incremental_creates_then_evolves_and_merges_through_a_staging_table(run, orders, source_sql):
    first, created = run(orders("incremental"))
    source_sql("ALTER TABLE orders ADD COLUMN note text")
    source_sql(
        "UPDATE orders SET status = 'paid', note = 'n', updated_at = updated_at + interval '1 day' WHERE order_id = 2"
    )

    second, merged = run(orders("incremental"), first.watermark)

    assert (first.inserted, second.updated, second.added_columns) == (6, 2, ["note"])  # 2 and 6 (at the watermark)
    assert_databricks_sql(created + merged)
    assert ("tableExists", TARGET) in created and ("saveAsTable", TARGET) in created
    assert ("sql", f"SELECT * FROM {TARGET}") in merged  # the target's schema, read before the ALTER
    assert statements(merged, "ALTER") == [f"ALTER TABLE {TARGET} ADD COLUMNS (`note` string)"]
    [staging] = {text for what, text in merged if what == "saveAsTable" and text != TARGET}
    assert re.fullmatch(r"`bronze`\.`select`\.`order__stg_[0-9a-f]{12}`", staging)
    [merge] = statements(merged, "MERGE")
    assert merge.startswith(f"MERGE INTO {TARGET} AS t USING {staging} AS s ON t.`order_id` = s.`order_id` ")
    assert isinstance(sqlglot.parse_one(merge, read="databricks"), exp.Merge)
    assert statements(merged, "DROP") == [f"DROP TABLE IF EXISTS {staging}"]


def test_rolling_merges_and_deletes_outside_and_missing_in_the_window(run, source_sql):
    source_sql("CREATE TABLE orders (order_id int PRIMARY KEY, status text, booked date)")
    source_sql("INSERT INTO orders SELECT g, 'new', date '2024-01-01' + g FROM generate_series(1, 9) g")
    row = control_row(
        "orders",
        "rolling",
        destination_schema="select",
        destination_table_name="order",
        primary_key_columns=["order_id"],
        rolling_column="booked",
        rolling_days=3,
        rolling_delete_missing=True,
    )
    run(row)
    source_sql("DELETE FROM orders WHERE order_id = 8")

    summary, sent = run(row)

    assert summary.deleted >= 1
    assert_databricks_sql(sent)
    [merge] = statements(sent, "MERGE")
    assert "WHEN NOT MATCHED BY SOURCE AND (" in merge


def test_append_only_appends_what_is_missing(run, orders, source_sql):
    row = orders("append_only", incremental_column="order_id", incremental_type="integer")
    first, _ = run(row)
    source_sql("INSERT INTO orders VALUES (7, 'new', timestamp '2024-01-02')")

    second, sent = run(row, first.watermark)

    assert second.inserted == 1
    assert_databricks_sql(sent)
    assert ("saveAsTable", TARGET) in sent
    assert any("LEFT ANTI JOIN" in text for _, text in sent)


def test_a_backfill_replaces_each_chunk_s_range_with_replace_where(run, orders):
    row = orders("chunked_backfill", incremental_column="order_id", incremental_type="integer", chunk_size=3)

    summary, sent = run(row)

    assert summary.inserted == 6
    assert_databricks_sql(sent)
    predicates = [text for what, text in sent if what == "replaceWhere"]
    # NULL cursors belong to chunk 0; IS TRUE keeps them out of every other chunk's replace
    assert predicates == ["((`order_id` < 4) OR `order_id` IS NULL) IS TRUE", "(`order_id` >= 4) IS TRUE"]


def test_a_full_load_overwrites_the_table_in_one_write(run, orders):
    row = orders("full")
    run(row)

    summary, sent = run(row)

    assert summary.inserted == 6
    assert_databricks_sql(sent)
    assert [what for what, text in sent if what == "saveAsTable"] == ["saveAsTable"]
