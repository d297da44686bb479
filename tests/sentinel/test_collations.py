"""Collations: the key columns of a DR replica or a migration target often sort differently from the
source's (an ICU database default, a case- or accent-insensitive column). Chunks must hold the same rows on
both sides whatever the collations, and the sync SQL must converge.

On Debian's PostgreSQL 15 with ICU (pgserver's build has none): source databases use libc C.UTF-8, targets
an ICU default (``LOCALE_PROVIDER icu``) or nondeterministic ICU column collations."""

from datetime import UTC, datetime

import psycopg
import pytest

from include.sentinel.compare import TableComparator
from include.sentinel.config import TableSpec
from include.sentinel.dialects.postgres import PostgresSentinel
from include.sentinel.sync import sync_sql
from include.sentinel.verify import reverify

ICU_DB = "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
# mixed case, accents and digits: C (bytes) and en-US order these differently
REGIONS = ["eu", "EU", "Us", "us", "apac", "Zulu", "äpfel", "Émile", "b", "B", "_x", "10", "9"]


def comparator(pair, table, pk, *, chunk_size=100):
    spec = TableSpec(table_name=table, primary_key=pk, chunk_size=chunk_size)
    return TableComparator(
        spec,
        lambda: psycopg.connect(pair.urls["source"]),
        lambda: psycopg.connect(pair.urls["target"]),
        dialect=PostgresSentinel(),
        max_threads=2,
    )


def converges(pair, table, pk, **options):
    """Compare, apply the sync SQL to the target, compare again: the second finds nothing."""
    c = comparator(pair, table, pk, **options)
    result = c.compare()
    sql = sync_sql(
        c,
        result,
        reverify(c, result),
        session_id="s",
        generated_at=datetime(2024, 1, 1, tzinfo=UTC),
        allow_deletes=True,
    )
    pair.sql("target", sql)
    after = comparator(pair, table, pk, **options).compare()
    assert all(ch.equal for ch in after.chunks)
    return result


def lines(pair, target_collation=""):
    for side in ("source", "target"):
        collate = target_collation if side == "target" else ""
        pair.sql(
            side,
            f"CREATE TABLE lines (region varchar(10) {collate}, order_no int, qty int, PRIMARY KEY (region, order_no))",
        )
        pair.sql(
            side,
            "INSERT INTO lines SELECT r, g, g FROM generate_series(1, 200) g, unnest(%s::text[]) r",
            (REGIONS,),
        )


def test_an_icu_target_database_with_a_composite_key_is_compared_exactly(icu_pair):
    pair = icu_pair(target=ICU_DB)
    lines(pair)
    pair.sql("target", "UPDATE lines SET qty = 0 WHERE (region, order_no) IN (('Us', 7), ('äpfel', 150))")
    pair.sql("target", "DELETE FROM lines WHERE (region, order_no) IN (('EU', 50), ('9', 1))")
    pair.sql("target", "INSERT INTO lines VALUES ('Émile', 999, 1), ('ZZ', 1, 1)")

    result = converges(pair, "lines", ("region", "order_no"))

    assert result.schema.collations == {"region": ["libc C.UTF-8", "icu en-US"]}
    assert result.schema.by_hash
    assert result.keys("different") == [("Us", 7), ("äpfel", 150)]
    assert result.keys("missing_in_target") == [("9", 1), ("EU", 50)]
    assert result.keys("missing_in_source") == [("ZZ", 1), ("Émile", 999)]
    assert result.matching == len(REGIONS) * 200 - 4


def test_a_varchar_key_in_an_icu_target_database(icu_pair):
    pair = icu_pair(target=ICU_DB)
    for side in ("source", "target"):
        pair.sql(side, "CREATE TABLE codes (code varchar(40) PRIMARY KEY, v int)")
        pair.sql(
            side,
            "INSERT INTO codes SELECT substr(md5(g::text), 1, 3) || upper(md5(g::text)), g "
            "FROM generate_series(1, 3000) g",
        )
    pair.sql("target", "UPDATE codes SET v = -1 WHERE v IN (10, 2000)")
    pair.sql("target", "DELETE FROM codes WHERE v = 1500")

    result = converges(pair, "codes", ("code",), chunk_size=500)

    assert [
        v
        for (v,) in pair.sql(
            "source", "SELECT v FROM codes WHERE code = ANY(%s) ORDER BY v", ([k for (k,) in result.keys("different")],)
        )
    ] == [10, 2000]
    assert len(result.keys("missing_in_target")) == 1 and result.keys("missing_in_source") == []


@pytest.mark.parametrize(
    ("locale", "source_keys", "target_keys"),
    [
        ("und-u-ks-level2", ["abc", "Abd", "XYZ"], ["abc", "ABD", "XYZ"]),  # case-insensitive: Abd = ABD
        ("und-u-ks-level1", ["cafe1", "résumé", "naïve"], ["cafe1", "resume", "naïve"]),  # accents ignored too
    ],
)
def test_nondeterministic_target_collations_compare_keys_exactly(icu_pair, locale, source_keys, target_keys):
    pair = icu_pair()
    pair.sql("target", f"CREATE COLLATION insensitive (provider = icu, locale = '{locale}', deterministic = false)")
    for side, extra in (("source", source_keys), ("target", target_keys)):
        collate = 'COLLATE "insensitive"' if side == "target" else ""
        pair.sql(side, f"CREATE TABLE names (name text {collate} PRIMARY KEY, n int)")
        pair.sql(side, "INSERT INTO names SELECT 'name' || g, g FROM generate_series(1, 500) g")
        pair.sql(side, "INSERT INTO names SELECT k, 0 FROM unnest(%s::text[]) k", (extra,))
    pair.sql("target", "UPDATE names SET n = -1 WHERE name = 'name77'")

    result = comparator(pair, "names", ("name",)).compare()

    [(source_collation, target_collation)] = result.schema.collations.values()
    assert (source_collation, target_collation) == ("libc C.UTF-8", f"icu {locale} nondeterministic")
    # keys are told apart byte for byte, as the source holds them
    assert result.keys("different") == [("name77",)]
    assert result.keys("missing_in_target") == [(k,) for k in sorted(set(source_keys) - set(target_keys))]
    assert result.keys("missing_in_source") == [(k,) for k in sorted(set(target_keys) - set(source_keys))]


def test_equal_icu_collations_keep_key_ranges(icu_pair):
    pair = icu_pair(source=ICU_DB, target=ICU_DB)
    lines(pair)
    pair.sql("target", "UPDATE lines SET qty = 0 WHERE region = 'Zulu' AND order_no = 3")

    result = converges(pair, "lines", ("region", "order_no"))

    assert result.schema.collations == {"region": ["icu en-US", "icu en-US"]}
    assert not result.schema.by_hash and len(result.chunks) == 26  # key ranges, the index serves them
    assert result.keys("different") == [("Zulu", 3)]


def test_binary_collations_of_other_names_sort_alike(icu_pair):
    pair = icu_pair()
    for side, collate in (("source", ""), ("target", 'COLLATE "C"')):
        pair.sql(side, f"CREATE TABLE codes (code text {collate} PRIMARY KEY, v int)")
        pair.sql(side, "INSERT INTO codes SELECT 'k' || g, g FROM generate_series(1, 300) g")
    result = comparator(pair, "codes", ("code",)).compare()
    assert result.schema.collations == {"code": ["libc C.UTF-8", "libc C"]}
    assert not result.schema.by_hash and all(ch.equal for ch in result.chunks)


def test_the_summary_shows_each_sides_key_collation_and_the_chunking(icu_pair, tmp_path, monkeypatch):
    from include.sentinel.config import parse_config
    from include.sentinel.run import run_comparison

    pair = icu_pair(target=ICU_DB)
    lines(pair)
    pair.sql("target", "UPDATE lines SET qty = 0 WHERE region = 'b' AND order_no = 9")
    monkeypatch.setenv("ICU_SOURCE_URL", pair.urls["source"])
    monkeypatch.setenv("ICU_TARGET_URL", pair.urls["target"])
    config = parse_config(
        {
            "source_database": {"db_type": "postgresql", "url_env": "ICU_SOURCE_URL"},
            "target_database": {"db_type": "postgresql", "url_env": "ICU_TARGET_URL"},
            "tables": [{"table_name": "lines", "primary_key": ["region", "order_no"], "chunk_size": 500}],
            "options": {"output_dir": str(tmp_path / "out"), "max_threads": 1},
        }
    )
    [row] = run_comparison(config)

    assert (row["status"], row["different"]) == ("completed", 1)
    [summary] = (tmp_path / "out").glob("comparison_summary_LINES_*.txt")
    text = summary.read_text()
    assert "key_collations: region: libc C.UTF-8 (source), icu en-US (target)" in text
    assert "chunking: key hash buckets (the key columns sort differently)" in text


def test_many_differing_buckets_are_read_in_one_scan_by_array(icu_pair, monkeypatch):
    pair = icu_pair(target=ICU_DB)
    for side in ("source", "target"):
        pair.sql(side, "CREATE TABLE codes (code text PRIMARY KEY, v int)")
        pair.sql(side, "INSERT INTO codes SELECT 'k' || g, g FROM generate_series(1, 6000) g")
    pair.sql("target", "UPDATE codes SET v = -v WHERE v % 4 = 0")  # 1,500 rows
    listed = []
    real = PostgresSentinel.bucket_list
    monkeypatch.setattr(PostgresSentinel, "bucket_list", lambda self, w: listed.append(len(w)) or real(self, w))

    result = comparator(pair, "codes", ("code",), chunk_size=32).compare()  # buckets of about one row

    assert result.schema.by_hash and len(result.keys("different")) == 1500
    assert listed and all(n > 1000 for n in listed)  # more than a literal list holds, in one query per side
