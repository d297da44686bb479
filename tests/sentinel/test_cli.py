"""`sentinel compare CONFIG`: the files it writes and its exit status."""

import csv
import json

import pytest
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


def _config_with(path, **changes):
    raw = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, field = dotted.split("__")
        raw[section][field] = value
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"source_database__url_env": "SENTINEL_UNSET_URL"},
            "error: source_database: set the environment variable SENTINEL_UNSET_URL (url_env)",
        ),
        (
            {"options__audit_db_url_env": "SENTINEL_UNSET_AUDIT"},
            "error: options.audit_db_url_env: set the environment variable SENTINEL_UNSET_AUDIT",
        ),
    ],
)
def test_a_refused_input_exits_2_with_one_line_and_writes_nothing(
    pair, tmp_path, monkeypatch, capsys, changes, message
):
    path = _config_with(write_config(tmp_path, monkeypatch, pair.urls), **changes)
    assert main(["compare", str(path)]) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(message)
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # no session, no audit


def test_a_missing_driver_and_an_unknown_table_are_refused(pair, tmp_path, monkeypatch, capsys):
    from include.sentinel import connect

    path = write_config(tmp_path, monkeypatch, pair.urls)
    assert main(["compare", str(path), "--table", "nope"]) == 2
    assert "error: table nope: not in the config's tables; give one of: accounts" in capsys.readouterr().err
    monkeypatch.setattr(connect, "_installed", lambda module: module != "psycopg")
    assert main(["compare", str(path)]) == 2
    assert "error: source_database.db_type postgresql: its driver is not installed; pip install psycopg" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(pair, tmp_path, monkeypatch, capsys):
    path = _config_with(write_config(tmp_path, monkeypatch, pair.urls), source_database__url_env="SENTINEL_UNSET")
    assert main(["compare", str(path), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_failed_table_exits_2_and_its_error_is_redacted_everywhere(pair, tmp_path, monkeypatch, capsys):
    import psycopg

    from include.sentinel.compare import TableComparator

    path = write_config(tmp_path, monkeypatch, pair.urls)
    monkeypatch.setenv("SENTINEL_PROD_URL", pair.urls["source"] + "&password=canary-hunter2")
    secret_url = "postgresql://app:canary-s3cret@dr.example:5432/app"

    def broken(self, chunk, columns):
        raise psycopg.OperationalError(f"connection to {secret_url} failed:\n  password=canary-hunter2 rejected")

    monkeypatch.setattr(TableComparator, "compare_chunk", broken)
    assert main(["compare", str(path)]) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line == (
        "error: table accounts: OperationalError: connection to postgresql://app:***@dr.example:5432/app failed: "
        "password=*** rejected"
    )
    out = tmp_path / "out"
    written = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "canary-hunter2" not in written and "s3cret" not in written
    [audit] = out.glob("audit_*.jsonl")
    assert json.loads(audit.read_text().splitlines()[-1])["event"] == "COMPARISON_FAILED"
