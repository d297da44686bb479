"""A DB Sentinel DAG run whose compare task is SIGKILLed mid-comparison, then cleared from the REST API.

The pair is two schemas of the tier's source database (``public`` the source, ``dr`` the target), 120,000 rows
with drift in three chunks, compared in 6 chunks (6 mapped ``compare_chunks`` tasks). Once a chunk's result is
stored the test takes an ACCESS EXCLUSIVE lock on the target table: every compare task that starts then waits
inside its comparison, on the target's first query. When each running compare task has its query waiting,
the task runner process of one of them (``airflow worker -- <ti id>``, the child of the executor's
supervisor) is SIGKILLed; the supervisor reports the try failed (retries are 0 in the tier). After the
operator's clear (only_failed, with downstream) the run succeeds: the report, the differing keys and the
sync SQL equal the CLI's uninterrupted ``sentinel compare`` of the same config, the chunks stored before the
kill were not compared again, and on-call got no page for the clear.
"""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
import pytest
import yaml

from include.sentinel.cli import main as sentinel
from tests.airflow.conftest import wait

CONFIG = "sentinel_kill"
DAG_ID = f"sentinel_{CONFIG}"
ROWS, CHUNK = 120_000, 20_000
TABLE = "public.kill_rows"
MISSING_IN_TARGET = [5, 61_000, 61_001]
MISSING_IN_SOURCE = [200_001, 200_002]  # beyond the source's last key: the last chunk is open above
DIFFERENT = [7, 90_001, 90_002, 119_999]
COUNTS = ("status", "source_rows", "target_rows", "matching", "missing_in_target", "missing_in_source")
COUNTS += ("different", "in_flight", "chunks", "chunks_differing", "chunking")


def config(alert_target: str) -> dict:
    side = {"db_type": "postgresql", "url_env": "TIER_SOURCE_URL"}
    return {
        "source_database": side,
        "target_database": side,
        "tables": [
            {"table_name": "kill_rows", "schema": "public", "target_schema": "dr", "primary_key": ["id"]}
            | {"chunk_size": CHUNK}
        ],
        "options": {"max_threads": 2},
        "airflow": {"schedule": None, "alert_target": alert_target},
    }


@pytest.fixture(scope="module")
def kill_pair(tier):
    tier.source("DROP SCHEMA IF EXISTS dr CASCADE")
    tier.source("DROP TABLE IF EXISTS public.kill_rows")
    tier.source("CREATE TABLE public.kill_rows (id int PRIMARY KEY, name text, amount numeric(12,2))")
    tier.source("INSERT INTO public.kill_rows SELECT g, 'name ' || g, g * 0.25 FROM generate_series(1, %s) g", (ROWS,))
    tier.source("CREATE SCHEMA dr")
    tier.source("CREATE TABLE dr.kill_rows (LIKE public.kill_rows INCLUDING ALL)")
    tier.source("INSERT INTO dr.kill_rows SELECT * FROM public.kill_rows WHERE NOT id = ANY(%s)", (MISSING_IN_TARGET,))
    tier.source("INSERT INTO dr.kill_rows SELECT g, 'only on DR', 1 FROM unnest(%s::int[]) g", (MISSING_IN_SOURCE,))
    tier.source("UPDATE dr.kill_rows SET name = 'changed on DR' WHERE id = ANY(%s)", (DIFFERENT,))
    raw = config(f"{tier.alerts.base}/{CONFIG}")
    sha = tier.deployment.push(
        "a comparison to kill", {f"include/sentinel/configs/{CONFIG}.yaml": yaml.safe_dump(raw, sort_keys=False)}
    )
    tier.wait_dags(DAG_ID, check=lambda d: d["bundle_version"] == sha)
    tier.unpause(DAG_ID)
    return raw


def compare_tis(tier, run_id: str) -> list[dict]:
    answer = tier.call("GET", tier.run_path(DAG_ID, run_id) + "/taskInstances", params={"limit": 100})
    return [ti for ti in answer["task_instances"] if ti["task_id"] == "compare_chunks"]


def runner(ti_id: str) -> psutil.Process | None:
    """The task runner of a task instance: the supervisor's child titled ``airflow worker -- <ti id>``."""
    for proc in psutil.process_iter(["cmdline"]):
        if f"airflow worker -- {ti_id}" in " ".join(proc.info["cmdline"] or []):
            return proc
    return None


def waiting_on_target(tier) -> int:
    """Sessions of the source database waiting for a lock on dr.kill_rows."""
    [(count,)] = tier.source(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE NOT l.granted AND l.relation = 'dr.kill_rows'::regclass AND a.datname = current_database()"
    )
    return count


def chunk_events(folder: Path) -> list[int]:
    [audit] = folder.glob("audit_*.jsonl")
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    return sorted(e["chunk"]["index"] for e in events if e["event"] == "CHUNK")


def report_rows(folder: Path) -> list[dict]:
    [report] = folder.glob("comparison_report_*.csv")
    with report.open() as f:
        return [{k: row[k] for k in ("table", *COUNTS)} for row in csv.DictReader(f)]


def statements(folder: Path) -> list[str]:
    [sql] = folder.glob("sync_target_*.sql")
    return [line for line in sql.read_text().splitlines() if not line.startswith("-- session ")]


def test_a_killed_compare_task_cleared_from_the_api_ends_as_an_uninterrupted_comparison(
    tier, kill_pair, tmp_path, monkeypatch
):
    run_id = tier.trigger(DAG_ID)
    folder = tier.stack.home / "sentinel" / DAG_ID / run_id.replace(":", "_").replace("+", "_")
    chunks = folder / "chunks" / "PUBLIC_KILL_ROWS"
    wait(lambda: any(chunks.glob("chunk_*.json")), timeout=300, what="a first chunk result", interval=0.5)

    with psycopg.connect(tier.source_url) as lock:  # every comparison that starts now waits on the target
        lock.execute("LOCK TABLE dr.kill_rows IN ACCESS EXCLUSIVE MODE")

        def all_running_are_waiting():
            running = [
                ti
                for ti in compare_tis(tier, run_id)
                if ti["state"] == "running" and not (chunks / f"chunk_{ti['map_index']:05d}.json").exists()
            ]
            return running and waiting_on_target(tier) >= len(running) and running

        running = wait(all_running_are_waiting, timeout=300, what="compare tasks waiting in a query", interval=0.5)
        victim = min(running, key=lambda ti: ti["map_index"])
        proc = wait(lambda: runner(victim["id"]), timeout=30, what=f"the task runner of {victim['id']}")
        stored_before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in chunks.glob("chunk_*.json")}
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        ti_path = tier.run_path(DAG_ID, run_id) + f"/taskInstances/compare_chunks/{victim['map_index']}"
        killed = wait(
            lambda: (ti := tier.call("GET", ti_path))["state"] == "failed" and ti,
            timeout=120,
            what="Airflow to record the killed try as failed",
        )
        lock.rollback()

    assert killed["try_number"] == 1
    assert tier.wait_run(DAG_ID, run_id) == "failed"
    states = tier.task_states(DAG_ID, run_id)
    assert states[("finish_table", -1)] == "upstream_failed" and states[("report", -1)] == "upstream_failed", states
    killed_chunk = chunks / f"chunk_{victim['map_index']:05d}.json"
    assert not killed_chunk.exists()  # the kill left no result (nor a partial one) for the re-run to trust
    stored = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in chunks.glob("chunk_*.json")}
    assert stored_before.items() <= stored.items() and len(stored) == ROWS // CHUNK - 1
    alerts_at_kill = tier.alerts_for(f"/{CONFIG}")
    print(  # the figures RELIABILITY.md quotes (pytest -s)
        f"killed compare_chunks[{victim['map_index']}] waiting in its query, {len(stored_before)} of {ROWS // CHUNK} "
        f"chunks stored before it, {len(running)} compare tasks waiting, {len(alerts_at_kill)} alerts at the kill"
    )

    tier.call(
        "POST",
        f"/dags/{quote(DAG_ID, safe='')}/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [["compare_chunks", victim["map_index"]]],
            "include_downstream": True,
            "only_failed": True,
            "reset_dag_runs": True,
        },
    )

    assert tier.wait_run(DAG_ID, run_id) == "success", tier.task_states(DAG_ID, run_id)
    assert tier.call("GET", ti_path)["try_number"] == 2
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in chunks.glob("chunk_*.json")}
    assert {n: v for n, v in after.items() if n != killed_chunk.name} == stored  # not compared again
    assert chunk_events(folder) == list(range(ROWS // CHUNK))  # each chunk compared once, the killed one too

    monkeypatch.setenv("TIER_SOURCE_URL", tier.source_url)  # the uninterrupted comparison: the CLI
    reference = tmp_path / "cli"
    path = tmp_path / f"{CONFIG}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in kill_pair.items() if k != "airflow"}))
    assert sentinel(["compare", str(path), "--output-dir", str(reference)]) == 1  # 1: differences found
    expected = report_rows(reference)
    assert [(r["missing_in_target"], r["missing_in_source"], r["different"]) for r in expected] == [
        (str(len(MISSING_IN_TARGET)), str(len(MISSING_IN_SOURCE)), str(len(DIFFERENT)))
    ]
    assert report_rows(folder) == expected
    [verified] = (reference / "checkpoints").glob("*_verified.json")
    assert json.loads((folder / "verified" / "PUBLIC_KILL_ROWS.json").read_text()) == json.loads(verified.read_text())
    assert statements(folder) == statements(reference)

    new = tier.alerts_for(f"/{CONFIG}")[len(alerts_at_kill) :]
    assert [a["title"] for a in new] == [f"{DAG_ID}: differences found"]  # the report's, no page for the clear
    assert all("compare_chunks failed (try 1)" in a["title"] for a in alerts_at_kill), alerts_at_kill
