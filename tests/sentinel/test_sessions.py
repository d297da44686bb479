"""Sessions: a comparison interrupted mid-table resumes at chunk level and ends as an uninterrupted run."""

import json
from dataclasses import replace

import pytest

from include.sentinel.cli import main
from include.sentinel.compare import TableComparator
from include.sentinel.config import load_config
from include.sentinel.run import run_comparison
from include.sentinel.session import SessionNotFound, SessionStore
from tests.sentinel.conftest import drift
from tests.sentinel.test_cli import write_config

RESULT_FIELDS = ("matching", "missing_in_target", "missing_in_source", "different", "source_rows", "target_rows")


def sql_body(path):
    return [line for line in open(path).read().splitlines() if not line.startswith("-- session")]


def test_an_interrupted_run_resumes_where_it_stopped(pair, tmp_path, monkeypatch):
    drift(pair)
    config = load_config(write_config(tmp_path, monkeypatch, pair.urls))
    config = replace(config, max_threads=1)
    reference = run_comparison(replace(config, output_dir=tmp_path / "reference"))[0]

    calls = []
    real = TableComparator.compare_chunk

    def interrupted(self, chunk, columns):
        calls.append(chunk.index)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl+C in the middle of the table
        return real(self, chunk, columns)

    monkeypatch.setattr(TableComparator, "compare_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(config)
    [session] = SessionStore(config.output_dir).list()
    progress = session.table_progress["accounts"]
    assert (progress.status, progress.completed_chunks, progress.total_chunks) == ("in_progress", 2, 4)

    calls.clear()
    monkeypatch.setattr(
        TableComparator, "compare_chunk", lambda self, c, cols: calls.append(c.index) or real(self, c, cols)
    )
    resumed = run_comparison(config, resume=session.session_id[:8])[0]

    assert sorted(calls) == [2, 3]  # only the chunks not checkpointed
    assert {f: resumed[f] for f in RESULT_FIELDS} == {f: reference[f] for f in RESULT_FIELDS}
    assert sql_body(resumed["sql_file"])[1:] == sql_body(reference["sql_file"])[1:]
    final = SessionStore(config.output_dir).load(session.session_id)
    assert (final.status, final.table_progress["accounts"].completed_chunks) == ("completed", 4)
    checkpoints = sorted((config.output_dir / "checkpoints").glob("*_chunk_*.json"))
    assert (config.output_dir / "checkpoints" / f"{session.session_id[:8]}_accounts_plan.json").exists()
    assert len(checkpoints) == 4
    assert json.loads(checkpoints[0].read_text())["index"] in range(4)  # JSON, not pickle

    calls.clear()
    run_comparison(config, resume=session.session_id)  # a completed table is skipped
    assert calls == []


def test_session_commands(pair, tmp_path, monkeypatch, capsys):
    path = write_config(tmp_path, monkeypatch, pair.urls)
    assert main(["compare", str(path)]) == 0
    capsys.readouterr()
    [session] = SessionStore(tmp_path / "out").list()

    assert main(["compare", str(path), "--list-sessions"]) == 0
    listing = capsys.readouterr().out
    assert f"Session ID: {session.session_id}" in listing and "Progress: 1/1 tables" in listing

    assert main(["compare", str(path), "--status", session.session_id[:6]]) == 0
    status = capsys.readouterr().out
    assert "Total Tables: 1" in status and "Completed: 1" in status and "completed    4/4" in status

    assert main(["compare", str(path), "--resume", "nope"]) == 2
    assert "no session 'nope'" in capsys.readouterr().err

    assert main(["compare", str(path), "--cleanup", "0"]) == 0
    assert "removed 1 sessions older than 0 days" in capsys.readouterr().out
    with pytest.raises(SessionNotFound):
        SessionStore(tmp_path / "out").load(session.session_id)


def test_retry_failed_compares_only_the_failed_tables(pair, tmp_path, monkeypatch):
    path = write_config(tmp_path, monkeypatch, pair.urls)
    config = load_config(path)
    broken = config.__class__(
        **{
            **vars(config),
            "tables": (*config.tables, config.tables[0].__class__(table_name="missing_table", primary_key=("id",))),
        }
    )
    rows = run_comparison(broken)
    assert [r["status"] for r in rows] == ["completed", "failed"]
    session_id = rows[0]["session"]

    for side in ("source", "target"):
        pair.sql(side, "CREATE TABLE missing_table (id int PRIMARY KEY, v text)")
    retried = run_comparison(broken, resume=session_id, retry_failed=True)

    assert [(r["table"], r["status"]) for r in retried] == [("missing_table", "completed")]
    assert SessionStore(config.output_dir).load(session_id).status == "completed"
