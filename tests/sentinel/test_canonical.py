"""The README's canonical-text table, held on real engines: each row's value is written into PostgreSQL,
loaded into Delta by the loader, and written into ClickHouse (chdb); every engine's portable canonical text
of it must be the table's text, and the Delta column the table's type. Oracle, SQL Server and Snowflake (no
server here) are held as exact SQL."""

import re
import uuid
from pathlib import Path

import chdb
import psycopg
import pytest

from include.local import postgres
from include.sentinel.dialects import dialect_for
from include.sentinel.pair import Side, compare_tables
from include.sentinel.spark import local_connect
from tests.sentinel.loaded import load_full

README = Path(__file__).parents[2] / "README.md"


def readme_rows() -> list[dict]:
    """The rows of the table under '### Two engines' (cells without their backticks; NULL a None)."""
    section = README.read_text().split("### Two engines", 1)[1].split("\n### ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        plain = [re.sub(r"^`(.*)`(?: \(empty\))?$", r"\1", c) for c in cells]
        pg_type, value, delta_type, ch_type, text = plain
        rows.append(
            {
                "pg": pg_type,
                "value": None if value == "NULL" else value,
                "delta": delta_type,
                "ch": None if ch_type == "-" else ch_type,
                "text": text,
            }
        )
    return rows


ROWS = readme_rows()
COLUMNS = [f"c{i}" for i in range(len(ROWS))]


def test_the_readme_table_is_read():
    assert len(ROWS) == 23
    assert ROWS[11] == {"pg": "text", "value": "", "delta": "string", "ch": "String", "text": "0:"}
    assert ROWS[12]["value"] is None and ROWS[12]["text"] == "N"


@pytest.fixture(scope="module")
def kinds(pg_url, spark, tmp_path_factory):
    """public.kinds: a row of the README's values (label 'one') and a row of NULLs (label 'two'), in
    PostgreSQL and loaded into Delta; -> (source url, Delta folder)."""
    url = postgres.create_database(pg_url, f"kinds_{uuid.uuid4().hex[:8]}", replace=True)
    columns = ", ".join(f"{c} {r['pg']}" for c, r in zip(COLUMNS, ROWS, strict=True))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE kinds (k int PRIMARY KEY, label text, {columns})")
        values = ", ".join(["%s"] * len(ROWS))
        conn.execute(f"INSERT INTO kinds VALUES (1, 'one', {values})", [r["value"] for r in ROWS])
        conn.execute("INSERT INTO kinds (k, label) VALUES (2, 'two')")
    return url, load_full(spark, tmp_path_factory.mktemp("warehouse"), url, "kinds")


def canonical_select(db_type: str, types: list[str], table: str) -> str:
    dialect = dialect_for(db_type, portable=True)
    texts = ", ".join(dialect.canonical(c, t) for c, t in zip(COLUMNS, types, strict=True))
    return f"SELECT {texts} FROM {table}"


def test_postgres_writes_the_canonical_text(kinds):
    url, _ = kinds
    with psycopg.connect(url) as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns").fetchall())
        select = canonical_select("postgresql", [types[c] for c in COLUMNS], "kinds")
        [values] = conn.execute(select + " WHERE k = 1").fetchall()
        [nulls] = conn.execute(select + " WHERE k = 2").fetchall()
    assert list(values) == [r["text"] for r in ROWS]
    assert set(nulls) == {"N"}


def test_the_loader_gives_the_delta_types_and_sail_the_canonical_text(kinds, spark):
    _, folder = kinds
    schema = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(folder).schema.fields}
    assert [schema[c] for c in COLUMNS] == [r["delta"] for r in ROWS]
    select = canonical_select("spark", [schema[c] for c in COLUMNS], f"delta.`{folder}`")
    [values] = spark.sql(select + " WHERE k = 1").collect()
    [nulls] = spark.sql(select + " WHERE k = 2").collect()
    assert list(values) == [r["text"] for r in ROWS]
    assert set(nulls) == {"N"}


def test_clickhouse_writes_the_canonical_text():
    rows = [(c, r) for c, r in zip(COLUMNS, ROWS, strict=True) if r["ch"]]
    conn = chdb.connect(":memory:")
    cursor = conn.cursor()
    table = f"kinds_{uuid.uuid4().hex[:8]}"
    columns = ", ".join(f"{c} Nullable({r['ch']})" for c, r in rows)
    cursor.execute(f"CREATE TABLE {table} (k Int32, {columns}) ENGINE = MergeTree ORDER BY k")

    def value(r):
        if r["value"] is None:
            return "NULL"
        text = "'" + r["value"].replace("\\", "\\\\").replace("'", "\\'") + "'"
        if r["ch"].startswith("DateTime64"):
            return f"parseDateTime64BestEffort({text}, 6)"
        return f"CAST({text} AS {r['ch']})"

    cursor.execute(f"INSERT INTO {table} SELECT 1, {', '.join(value(r) for _, r in rows)}")
    cursor.execute(f"INSERT INTO {table} (k) VALUES (2)")
    dialect = dialect_for("clickhouse", portable=True)
    texts = ", ".join(dialect.canonical(c, f"Nullable({r['ch']})") for c, r in rows)
    cursor.execute(f"SELECT {texts} FROM {table} ORDER BY k")
    values, nulls = cursor.fetchall()
    conn.close()
    assert list(values) == [r["text"] for _, r in rows]
    assert set(nulls) == {"N"}


def test_postgres_and_delta_compare_equal_with_a_text_key(kinds, spark, tmp_path):
    """Every README type in one table, its text key in key-hash buckets: the two engines' hashes agree."""
    url, folder = kinds
    source = Side("postgresql", lambda: psycopg.connect(url, autocommit=True), "public", "kinds")
    target = Side("spark", local_connect(spark), "delta", folder)
    result = compare_tables(source, target, key=["label"], columns=None, out_dir=tmp_path)
    assert (result["source_rows"], result["target_rows"], result["matching"]) == (2, 2, 2)
    assert result["sync_sql"] is None


def test_timestamps_at_fewer_digits_are_cut_alike(kinds, spark):
    """timestamp_precision 3: the microseconds divided toward zero by 1000, on both engines."""
    url, folder = kinds
    stamps = [c for c, r in zip(COLUMNS, ROWS, strict=True) if r["pg"].startswith("timestamp")]
    with psycopg.connect(url) as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns").fetchall())
        texts = ", ".join(
            dialect_for("postgresql", portable=True, timestamp_precision=3).canonical(c, types[c]) for c in stamps
        )
        [source] = conn.execute(f"SELECT {texts} FROM kinds WHERE k = 1").fetchall()
    schema = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(folder).schema.fields}
    texts = ", ".join(dialect_for("spark", timestamp_precision=3).canonical(c, schema[c]) for c in stamps)
    [target] = spark.sql(f"SELECT {texts} FROM delta.`{folder}` WHERE k = 1").collect()
    assert list(source) == list(target) == ["1706745599123", "1706745599123"]


def test_a_config_pairs_postgres_with_a_delta_table_through_the_cli_steps(kinds, spark, tmp_path, monkeypatch):
    """The CLI's steps (plan stored as JSON, chunks, finish) with db_type spark on the target side."""
    from include.sentinel.config import parse_config
    from include.sentinel.run import run_comparison

    url, folder = kinds
    monkeypatch.setenv("SENTINEL_KINDS_URL", url)
    config = parse_config(
        {
            "source_database": {"db_type": "postgresql", "url_env": "SENTINEL_KINDS_URL"},
            "target_database": {"db_type": "spark"},
            "tables": [
                {
                    "table_name": "kinds",
                    "schema": "public",
                    "primary_key": "k",
                    "target_schema": "delta",
                    "target_table": folder,
                }
            ],
            "options": {"output_dir": str(tmp_path / "out"), "max_threads": 1},
        }
    )
    [row] = run_comparison(config)
    assert (row["status"], row["source_rows"], row["target_rows"], row["matching"]) == ("completed", 2, 2, 2)
    assert row["chunking"] == "key ranges"  # a whole-number key on both engines


# -- the same table, hashed in process (include/dataloader/verification/canonical.py) ------------------


@pytest.fixture(scope="module")
def arrow_kinds(kinds, spark):
    """The kinds table as the in-process verification reads it: the source through the loader's ADBC reader,
    the Delta table through delta-rs; each column's kind from its side's catalog type, as the sentinel's
    dialects classify it. -> (source batch, target batch, source kinds, target kinds)"""
    import pyarrow as pa

    from include.control.model import ControlRow
    from include.dataloader.dialects import ConnectionParams
    from include.dataloader.dialects import dialect_for as loader_dialect
    from include.dataloader.verification import Scope, Terms, source_columns
    from include.dataloader.verification.arrow import bronze_scan, source_scan

    url, folder = kinds
    names = ["k", *COLUMNS]
    with psycopg.connect(url) as conn:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns").fetchall())
    delta = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(folder).schema.fields}
    source_kinds = [(n, dialect_for("postgresql", portable=True).kind(types[n])) for n in names]
    target_kinds = [(n, dialect_for("spark", portable=True).kind(delta[n])) for n in names]
    row = ControlRow.from_mapping(
        {
            "control_key": "test.kinds",
            "db_config_key": "test_source",
            "source_schema": "public",
            "source_table_name": "kinds",
            "destination_schema": "test",
            "destination_table_name": "kinds",
            "load_strategy": "full",
            "cron": "@daily",
        }
    )
    dialect, params = loader_dialect("postgresql"), ConnectionParams(url=url)
    with psycopg.connect(url) as conn:
        columns = source_columns(row, dialect, conn)
    decimals = frozenset(n for n, kind in source_kinds if kind == "decimal")
    source = pa.Table.from_batches(list(source_scan(row, dialect, params, columns, names, None, as_text=decimals)()))
    full = Scope("full", Terms("failure", "failure"))
    target = pa.Table.from_batches(list(bronze_scan(folder, names, full)()))
    return source.sort_by("k"), target.sort_by("k"), source_kinds, target_kinds


def test_the_in_process_canonical_text_is_the_readme_table_on_both_sides(arrow_kinds):
    """Every README row, from PostgreSQL's Arrow (ADBC) and from the Delta table's (delta-rs)."""
    from include.dataloader.verification.canonical import canonical

    source, target, source_kinds, target_kinds = arrow_kinds
    for table, kinds_of in ((source, source_kinds), (target, target_kinds)):
        texts = {n: canonical(table.column(n), kind).to_pylist() for n, kind in kinds_of}
        assert [texts[c][0] for c in COLUMNS] == [r["text"] for r in ROWS]
        assert {texts[c][1] for c in COLUMNS} == {"N"}


def test_in_process_timestamps_at_fewer_digits_are_cut_toward_zero(arrow_kinds):
    import pyarrow as pa

    from include.dataloader.verification.canonical import canonical

    source, target, source_kinds, _ = arrow_kinds
    stamps = [n for n, kind in source_kinds if kind.startswith("timestamp")]
    for table in (source, target):
        assert [canonical(table.column(n), "timestamp", timestamp_precision=3)[0].as_py() for n in stamps] == [
            "1706745599123",
            "1706745599123",
        ]
    before_1970 = pa.array([-1, -1500], pa.timestamp("us"))  # toward zero, as the SQL's integer division
    assert canonical(before_1970, "timestamp", timestamp_precision=3).to_pylist() == ["0", "-1"]


def _nudged(value):
    """A value of the same type that differs by the least that its kind compares."""
    import math
    from datetime import date, datetime, timedelta
    from decimal import Decimal

    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, Decimal):
        return value + Decimal(1).scaleb(value.as_tuple().exponent)
    if isinstance(value, float):
        return value + 1 if value == 0 else math.nextafter(value, math.inf) * (1 + 1e-6)
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, date):
        return value + timedelta(days=1)
    if isinstance(value, bytes):
        return value + b"\x00"
    return value + "x"


@pytest.mark.parametrize("column", COLUMNS)
def test_a_one_value_drift_of_each_type_is_caught_in_process(arrow_kinds, column):
    """The bronze row of every README type changed by its least step, and to NULL (the NULL text to ''):
    a different row."""
    import pyarrow as pa

    from include.dataloader.verification.buckets import ArrowSide, compare_streams

    source, target, source_kinds, target_kinds = arrow_kinds
    index = target.column_names.index(column)

    def side(table, kinds_of):
        return ArrowSide(lambda: table.to_batches(), kinds_of, 1)

    assert compare_streams(side(source, source_kinds), side(target, target_kinds)).equal
    values = target.column(column).to_pylist()
    for drifted in (_nudged(values[0]), None) if values[0] is not None else ("",):  # NULL vs ''
        changed = target.set_column(index, column, pa.array([drifted, values[1]], target.schema.field(column).type))
        diff = compare_streams(side(source, source_kinds), side(changed, target_kinds))
        assert (diff.different, diff.missing_in_target, diff.missing_in_source) == ([(1,)], [], []), drifted
