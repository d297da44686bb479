"""A `dataloader run` SIGKILLed at every stage of every strategy, then recovered as an operator would:
`dataloader run` again (no `--take-over` needed on the same host: the dead process is seen gone).

Asserted after the recovery: the target holds exactly the expected rows (no duplicate, nothing lost), the
watermark is the committed one, the control row and historical_metadata say what happened to both runs,
and no staging table or staged file is left. Before it: what the kill left (the case really bit).

The engine kills die inside a committing Spark call (full's overwrite, a chunk's write, the MERGE) while
the engine executes it; the engine then commits the call or fails it, and the case asserts from the
target's Delta log which of the two happened before it asserts the recovery."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import sql

from include.dataloader.cli import main
from include.dataloader.target import EXTRACT_FOLDER, LocalWarehouse, TableName
from tests.dataloader.conftest import control_row
from tests.reliability import kill_child

pytestmark = pytest.mark.spark

FIELDS = {
    "full": {},
    "incremental": {"incremental_column": "updated_at", "incremental_type": "timestamp", "primary_key_columns": ["id"]},
    "append_only": {"incremental_column": "updated_at", "incremental_type": "timestamp", "primary_key_columns": ["id"]},
    "check_and_load": {
        "incremental_column": "updated_at",
        "incremental_type": "timestamp",
        "primary_key_columns": ["id"],
    },
    "rolling": {"rolling_column": "updated_at", "rolling_days": 7, "primary_key_columns": ["id"]},
    "chunked_backfill": {
        "incremental_column": "id",
        "incremental_type": "integer",
        "primary_key_columns": ["id"],
        "chunk_size": 3,
    },
}
MERGING = ("incremental", "append_only", "check_and_load", "rolling")
CASES = [
    ("full", "extraction"),
    ("full", "committed"),
    *[(s, stage) for s in MERGING for stage in ("extraction", "staged", "merge", "committed")],
    *[("chunked_backfill", stage) for stage in ("extraction", "chunk", "finalize", "committed")],
]


class Case:
    def __init__(self, env, strategy, stage, capsys, monkeypatch, suffix=""):
        self.env, self.strategy, self.stage, self.capsys = env, strategy, stage, capsys
        self.table = f"{strategy}_{stage}{suffix}"
        self.key = f"test.{self.table}"
        monkeypatch.setenv("DATALOADER_WAREHOUSE", str(env.warehouse))
        self.repo = env.repo
        self.warehouse = None

    def create(self):
        t = sql.Identifier(self.table)
        self.env.source(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, status text, updated_at timestamp(0))").format(t))
        # five rows of the last hours, one of ten days ago (outside the rolling window)
        self.env.source(
            sql.SQL(
                "INSERT INTO {} SELECT g, 'new', date_trunc('second', now() AT TIME ZONE 'UTC') - "
                "CASE WHEN g = 6 THEN interval '10 days' ELSE (10 - g) * interval '1 hour' END "
                "FROM generate_series(1, 6) g"
            ).format(t)
        )
        self.repo.add(control_row(self.table, self.strategy, db_config_key="kill_source", **FIELDS[self.strategy]))

    def change(self):
        t = sql.Identifier(self.table)
        now = sql.SQL("date_trunc('second', now() AT TIME ZONE 'UTC')")
        self.env.source(
            sql.SQL("UPDATE {} SET status = 'paid', updated_at = {} - interval '30 minutes' WHERE id = 1").format(
                t, now
            )
        )
        self.env.source(sql.SQL("INSERT INTO {} VALUES (7, 'new', {} - interval '20 minutes')").format(t, now))

    def source_rows(self):
        return sorted(
            self.env.source(sql.SQL("SELECT id, status, updated_at FROM {}").format(sql.Identifier(self.table)))
        )

    def run(self):
        """`dataloader run KEY` in this process, as the operator's next command."""
        self.capsys.readouterr()
        code = main(["--db-url", self.env.control_url, "run", self.key])
        out, err = self.capsys.readouterr()
        assert code == 0, err
        return json.loads(out), err

    @property
    def marker(self):
        return self.env.markers / self.table

    def kill(self):
        marker = self.marker
        marker.parent.mkdir(parents=True, exist_ok=True)
        process = self.env.fork.Process(
            target=kill_child.run_until_killed, args=(self.stage, self.key, self.env.child_env(), str(marker))
        )
        process.start()
        process.join(timeout=300)  # a guard against a hang, not a measurement
        if process.is_alive():
            process.kill()
            process.join()
        exited = marker.with_suffix(".exit")
        assert not exited.exists(), f"the load ended ({exited.read_text()}) without reaching {self.stage}"
        assert (process.exitcode, marker.exists() and marker.read_text()) == (-9, self.stage)
        return process

    @property
    def target(self) -> TableName:
        row = self.repo.get(self.key)
        return TableName(row["destination_catalog"], row["destination_schema"], row["destination_table_name"])

    def target_rows(self, spark):
        warehouse = LocalWarehouse(spark, self.env.warehouse)
        if not warehouse.exists(self.target):
            return []
        return sorted(tuple(r) for r in warehouse.read(self.target).select("id", "status", "updated_at").collect())

    def versions(self) -> int:
        """How many commits the target's Delta log holds."""
        log = self.env.warehouse.joinpath(*str(self.target).split(".")) / "_delta_log"
        return len(list(log.glob("*.json")))

    def release(self, engine: str) -> None:
        """Let the call the engine holds go on: ``commit`` (to its Delta commit) or ``fail``."""
        release = self.marker.with_suffix(".release")
        release.with_suffix(".tmp").write_text(engine)
        release.with_suffix(".tmp").rename(release)  # whole, never read half-written

    def staged_files(self):
        root = self.env.warehouse / EXTRACT_FOLDER
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []

    def staging_tables(self):
        folder = self.env.warehouse / self.target.catalog / self.target.schema
        return sorted(p.name for p in folder.glob(f"{self.table}__stg_*"))


def expected_rows(strategy, before, after):
    if strategy == "append_only":  # never updates: the changed row keeps its first version
        return sorted([*before, *(r for r in after if r[0] not in {b[0] for b in before})])
    if strategy == "rolling":
        window = datetime.combine(datetime.now(UTC).date() - timedelta(days=7), datetime.min.time())
        return [r for r in after if r[2] >= window]
    return after


def assert_recovered(case, spark, killed, killed_run, expected, runs_before):
    """The next `dataloader run` recovers: exactly the expected rows, the committed watermark, the control row
    and historical_metadata true, nothing staged left."""
    summary, err = case.run()

    assert err.startswith(f"note: ended run {killed_run}: its process (pid {killed.pid} on host ")
    assert case.target_rows(spark) == expected  # sorted rows with their keys: a duplicate would show
    assert (case.staged_files(), case.staging_tables()) == ([], [])
    row = case.repo.get(case.key)
    runs = case.repo.runs(case.key)
    assert [r["load_status"] for r in runs] == ["Succeeded"] * runs_before + ["Failed", "Succeeded"]
    assert (row["last_status"], row["current_run_id"]) == ("Succeeded", runs[-1]["run_id"])
    assert row["rows_processed"] == summary["inserted"] + summary["updated"] + summary["deleted"]
    ended = runs[-2]
    assert (ended["run_id"], ended["run_pid"]) == (killed_run, killed.pid)
    assert ended["error_message"].startswith(f"Ended: dataloader run {killed_run} is gone: its process (pid ")
    recorded = [
        h for h in case.repo.history(case.key) if h["new_values"].get("last_status_message") == ended["error_message"]
    ]
    assert len(recorded) == 1  # the end of the killed run, recorded once
    if case.strategy in ("incremental", "append_only", "check_and_load"):
        assert row["incremental_value"] == str(max(r[2] for r in expected))
    elif case.strategy == "chunked_backfill":
        assert (row["incremental_value"], row["load_strategy"]) == (str(max(r[0] for r in expected)), "incremental")
    else:
        assert row["incremental_value"] is None


@pytest.mark.parametrize(("strategy", "stage"), CASES, ids=[f"{s}-{st}" for s, st in CASES])
def test_a_load_killed_at_a_stage_is_recovered_by_the_next_run(kill_env, spark, capsys, monkeypatch, strategy, stage):
    case = Case(kill_env, strategy, stage, capsys, monkeypatch)
    case.create()
    before = case.source_rows()
    runs_before = 0
    if strategy != "chunked_backfill":  # a backfill is the first load: it is killed on its way
        case.run()
        runs_before = 1
        case.change()
    after = case.source_rows()
    expected = expected_rows(strategy, before, after)
    loaded = expected_rows(strategy, before, before)

    killed = case.kill()

    # what the kill left: the row says a run holds it, the target as far as the load got
    row = case.repo.get(case.key)
    killed_run = row["current_run_id"]
    assert (row["last_status"], killed_run[:5]) == ("In Progress", "cli__")
    left = {
        "extraction": loaded if strategy != "chunked_backfill" else [],
        "staged": loaded,
        "merge": expected,
        "chunk": [r for r in expected if r[0] < 4],  # chunk 0: ids below 1 + chunk_size
        "finalize": expected,
        "committed": expected,
    }
    assert case.target_rows(spark) == left[stage]
    if stage == "extraction":
        assert any(p.suffix == ".parquet" for p in case.staged_files())
    if stage in ("staged", "merge"):
        assert len(case.staging_tables()) == 1

    assert_recovered(case, spark, killed, killed_run, expected, runs_before)


class NoAirflow:
    """The reconciler's view of Airflow; a CLI run is never Airflow's to judge."""

    def run_state(self, dag_id, run_id):
        raise AssertionError(f"asked Airflow about {run_id}")


def test_a_load_killed_after_its_commit_is_ended_by_the_reconciler_and_the_next_run_loads(
    kill_env, spark, capsys, monkeypatch
):
    from include.dataloader.monitors.reconcile import reconcile

    case = Case(kill_env, "incremental", "committed", capsys, monkeypatch, suffix="_reconciled")
    case.create()
    case.run()
    case.change()
    killed = case.kill()
    killed_run = case.repo.get(case.key)["current_run_id"]

    corrections = reconcile(case.repo, NoAirflow())

    [done] = corrections
    assert (done["run_id"], done["was"]) == (killed_run, "In Progress")
    assert done["cli_run"].startswith(f"its process (pid {killed.pid} on host ")
    assert case.repo.get(case.key)["last_status"] == "Failed"
    _, err = case.run()
    assert err == ""  # nothing left to end
    assert case.target_rows(spark) == case.source_rows()
    runs = case.repo.runs(case.key)
    assert [r["load_status"] for r in runs] == ["Succeeded", "Failed", "Succeeded"]
    assert "(seen by the reconciler)" in runs[1]["error_message"]
    row = case.repo.get(case.key)
    assert (row["last_status"], row["incremental_value"]) == ("Succeeded", str(max(r[2] for r in case.source_rows())))


# (strategy, stage, what the engine does with the call once its client is dead). Sail goes on with a call
# whose client died: released, it commits (seen: the commit landed after the death, every run); "fail" makes
# the engine fail it instead, the other outcome an engine may have (no commit)
ENGINE_CASES = [
    ("full", "in_overwrite", "commit"),
    ("full", "in_overwrite", "fail"),
    ("chunked_backfill", "in_chunk", "commit"),
    ("chunked_backfill", "in_chunk", "fail"),
    ("incremental", "in_merge", "commit"),
    ("check_and_load", "in_merge", "fail"),
    ("rolling", "in_merge", "commit"),
    # released with "commit", Sail did not commit an append whose client had died (60 s waited): only "fail"
    ("append_only", "in_append", "fail"),
]
LANDED_WAIT_SECONDS = 60  # a guard for the engine's commit after the release, not a measurement


@pytest.mark.parametrize(
    ("strategy", "stage", "engine"), ENGINE_CASES, ids=[f"{s}-{st}-{e}" for s, st, e in ENGINE_CASES]
)
def test_a_load_killed_inside_a_spark_call_is_recovered_whether_the_engine_commits_it_or_not(
    kill_env, spark, capsys, monkeypatch, strategy, stage, engine
):
    case = Case(kill_env, strategy, stage, capsys, monkeypatch, suffix=f"_{engine}")
    case.create()
    before = case.source_rows()
    runs_before = 0
    if strategy != "chunked_backfill":
        case.run()
        runs_before = 1
        case.change()
    expected = expected_rows(strategy, before, case.source_rows())
    # what the last commit holds: the first run's rows (rolling's: its window), chunk 0 of a backfill
    loaded = [r for r in expected if r[0] < 4] if stage == "in_chunk" else expected_rows(strategy, [], before)

    killed = case.kill()

    # the request reached the engine: the gate ran in the engine's process (Sail, served from this one),
    # not in the dead loader's; it holds the call, so nothing of it is committed yet
    assert int(case.marker.with_suffix(".engine").read_text()) == os.getpid() != killed.pid
    killed_run = case.repo.get(case.key)["current_run_id"]
    held = case.versions()
    if stage != "in_merge":  # (Sail lets no read of a table through while a MERGE into it is held)
        assert case.target_rows(spark) == loaded
    assert not case.marker.with_suffix(".done").exists()

    case.release(engine)  # the engine goes on without its client
    deadline = time.monotonic() + LANDED_WAIT_SECONDS
    while not case.marker.with_suffix(".done").exists() or (
        engine == "commit" and case.versions() == held and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    landed = case.versions() == held + 1
    assert landed == (engine == "commit")  # the outcome this case records: landed after the death, or not
    assert case.target_rows(spark) == (expected if landed else loaded)
    if stage in ("in_merge", "in_append"):
        assert len(case.staging_tables()) == 1  # the dead run's, read by the MERGE or the append

    assert_recovered(case, spark, killed, killed_run, expected, runs_before)
