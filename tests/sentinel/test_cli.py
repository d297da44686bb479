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
