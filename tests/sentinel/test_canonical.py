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
