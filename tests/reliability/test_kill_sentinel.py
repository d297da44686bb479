"""`sentinel compare` of a 1,000,000-row PostgreSQL table pair SIGKILLed at a random chunk, three times in a
row (each try resumed and killed again), then `--resume` to the end: the report's counts, the differing
keys and the sync SQL equal an uninterrupted run's. The kill points come from ``random.Random(SEED)``."""

from __future__ import annotations

import csv
import random

import psycopg
import pytest
import yaml

from include.local import postgres
from include.sentinel.cli import main
from include.sentinel.session import SessionStore
from tests.reliability import kill_child

SEED = 15
ROWS = 1_000_000
CHUNK_ROWS = 100_000
KILLS = 3
COUNTS = ("status", "source_rows", "target_rows", "matching", "missing_in_target", "missing_in_source", "different")


@pytest.fixture(scope="session")
def million_pair(pg_url):
    """Two databases of the session server with the same 1M-row table, built once, and drift in five
    chunks: changed, deleted and extra rows."""
    source = postgres.create_database(pg_url, "reliability_million_source", replace=True)
    with psycopg.connect(source) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("CREATE TABLE ledger (id int, amount numeric(12,2), memo text)")
        conn.execute("INSERT INTO ledger SELECT g, g * 0.01, 'memo ' || g FROM generate_series(1, %s) g", (ROWS,))
        conn.execute("ALTER TABLE ledger ADD PRIMARY KEY (id)")  # one index build, not a million inserts into it
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the other side: a copy of the files, not a rebuild
        conn.execute("DROP DATABASE IF EXISTS reliability_million_target WITH (FORCE)")
        conn.execute("CREATE DATABASE reliability_million_target TEMPLATE reliability_million_source")
    urls = {"source": source, "target": postgres.database_url(pg_url, "reliability_million_target")}
    with psycopg.connect(urls["target"]) as conn:
        conn.execute("UPDATE ledger SET memo = 'changed' WHERE id IN (17, 250001, 999999)")
        conn.execute("DELETE FROM ledger WHERE id IN (420000, 420001)")
        conn.execute("INSERT INTO ledger VALUES (1000001, 1, 'only on DR'), (1000002, 2, 'only on DR')")
        conn.execute("UPDATE ledger SET amount = amount + 0.01 WHERE id = 777777")
    yield urls
    with psycopg.connect(pg_url, autocommit=True) as conn:  # dropped, their pages need no shutdown checkpoint
        for side in ("target", "source"):
            conn.execute(f"DROP DATABASE IF EXISTS reliability_million_{side} WITH (FORCE)")


def write_config(tmp_path, urls):
    path = tmp_path / "ledger.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "source_database": {"db_type": "postgresql", "url_env": "RELIABILITY_PROD_URL"},
                "target_database": {"db_type": "postgresql", "url_env": "RELIABILITY_DR_URL"},
                "tables": [{"table_name": "ledger", "primary_key": ["id"], "chunk_size": CHUNK_ROWS}],
                "options": {"output_dir": str(tmp_path / "out"), "max_threads": 2},
            }
        )
    )
    return path


def result(folder):
    [report] = folder.glob("comparison_report_*.csv")
    [row] = list(csv.DictReader(report.open()))
    [sync] = folder.glob("sync_target_*.sql")
    body = [line for line in sync.read_text().splitlines() if not line.startswith("--")]
    return {f: row[f] for f in COUNTS}, body


def test_a_comparison_killed_at_random_chunks_resumes_to_the_uninterrupted_result(
    million_pair, tmp_path, monkeypatch, forkserver
):
    env = {"RELIABILITY_PROD_URL": million_pair["source"], "RELIABILITY_DR_URL": million_pair["target"]}
    for name, url in env.items():
        monkeypatch.setenv(name, url)
    config = write_config(tmp_path, million_pair)
    assert main(["compare", str(config), "--output-dir", str(tmp_path / "reference")]) == 1
    reference = result(tmp_path / "reference")
    assert reference[0]["different"] == "4" and len(reference[1]) == 8  # the drift is there to be found

    rng, session, done = random.Random(SEED), None, []
    store = SessionStore(tmp_path / "out")
    checkpoints = lambda: sorted((tmp_path / "out" / "checkpoints").glob("*_chunk_*.json"))  # noqa: E731
    for attempt in range(KILLS):
        remaining = ROWS // CHUNK_ROWS - len(checkpoints())
        kill_at = rng.randint(1, remaining)
        marker = tmp_path / f"killed-{attempt}"
        argv = [str(config), *(["--resume", session] if session else [])]
        child = forkserver.Process(target=kill_child.compare_until_killed, args=(argv, env, kill_at, str(marker)))
        child.start()
        child.join(timeout=300)
        assert (child.exitcode, marker.read_text().startswith("chunk ")) == (-9, True)
        session = session or store.list()[0].session_id
        done.append(len(checkpoints()))
        assert store.load(session).status != "completed"

    assert done == sorted(done)  # what a killed try had checkpointed is kept by the next
    assert main(["compare", str(config), "--resume", session]) == 1
    assert result(tmp_path / "out") == reference
    assert store.load(session).status == "completed"
