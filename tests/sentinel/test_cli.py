"""`sentinel compare CONFIG`: the files it writes and its exit status."""

import csv
import json

import yaml

from include.sentinel.cli import main
from tests.sentinel.conftest import drift


def write_config(tmp_path, monkeypatch, urls):
    monkeypatch.setenv("SENTINEL_PROD_URL", urls["source"])
    monkeypatch.setenv("SENTINEL_DR_URL", urls["target"])
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "source_database": {"db_type": "postgresql", "url_env": "SENTINEL_PROD_URL"},
                "target_database": {"db_type": "postgresql", "url_env": "SENTINEL_DR_URL"},
                "tables": [{"table_name": "accounts", "primary_key": ["id"], "chunk_size": 250}],
                "options": {"output_dir": str(tmp_path / "out"), "max_threads": 2},
            }
        )
    )
    return path


def test_a_clean_comparison_exits_0_and_writes_no_sql(pair, tmp_path, monkeypatch):
    assert main(["compare", str(write_config(tmp_path, monkeypatch, pair.urls))]) == 0
    out = tmp_path / "out"
    assert not list(out.glob("sync_target_*.sql"))
    [report] = out.glob("comparison_report_*.csv")
    [row] = list(csv.DictReader(report.open()))
    assert (row["table"], row["status"], row["matching"], row["chunks"]) == ("accounts", "completed", "1000", "4")


def test_differences_exit_1_with_sql_summary_report_and_audit(pair, tmp_path, monkeypatch):
    drift(pair)
    assert main(["compare", str(write_config(tmp_path, monkeypatch, pair.urls))]) == 1
    out = tmp_path / "out"
    [sql] = out.glob("sync_target_ACCOUNTS_*.sql")
    assert "-- inserts 2, updates 7, deletes 1" in sql.read_text()
    assert list(out.glob("comparison_summary_ACCOUNTS_*.txt"))
    [audit] = out.glob("audit_*.jsonl")
    events = [json.loads(line)["event"] for line in audit.read_text().splitlines()]
    assert events == ["COMPARISON_START", "CHUNK", "CHUNK", "CHUNK", "CHUNK", "COMPARISON_END"]
    chunk = json.loads(audit.read_text().splitlines()[1])["chunk"]
    assert set(chunk) >= {"index", "source_rows", "target_rows", "equal", "different_count"}


def test_a_bad_config_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("tables: [{table_name: T}]\nsource_database: {}\ntarget_database: {}\n")
    assert main(["compare", str(path)]) == 2
    assert "table T: primary_key is required" in capsys.readouterr().err


def test_audit_events_go_to_the_control_database_when_configured(pair, tmp_path, monkeypatch, control_url, caplog):
    import logging

    from include.sentinel.config import load_config
    from include.sentinel.run import run_comparison

    drift(pair)
    path = write_config(tmp_path, monkeypatch, pair.urls)
    raw = yaml.safe_load(path.read_text())
    raw["options"]["audit_db_url_env"] = "SENTINEL_AUDIT_DB"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("SENTINEL_AUDIT_DB", control_url)

    with caplog.at_level(logging.INFO, logger="include.sentinel"):
        [row] = run_comparison(load_config(path))

    import psycopg

    with psycopg.connect(control_url) as conn:
        events = conn.execute(
            "SELECT event, table_name, details FROM sentinel_audit WHERE session_id = %s ORDER BY id", (row["session"],)
        ).fetchall()
    assert [e[0] for e in events] == ["COMPARISON_START", "CHUNK", "CHUNK", "CHUNK", "CHUNK", "COMPARISON_END"]
    assert {e[1] for e in events} == {"accounts"}
    assert events[-1][2]["results"]["different"] == 7
    assert "accounts: processed chunk 4/4" in caplog.text  # not a terminal: the seeds' log lines


def test_an_unset_audit_variable_is_refused(pair, tmp_path, monkeypatch):
    import pytest

    from include.sentinel.config import ConfigError, load_config
    from include.sentinel.run import run_comparison

    path = write_config(tmp_path, monkeypatch, pair.urls)
    raw = yaml.safe_load(path.read_text())
    raw["options"]["audit_db_url_env"] = "NOT_SET_ANYWHERE"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="set the environment variable NOT_SET_ANYWHERE"):
        run_comparison(load_config(path))
