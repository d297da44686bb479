"""The secret canary (tests/canary.py): nothing the tests wrote holds a password or token they used.

``test_nothing_the_tests_wrote_holds_a_canary`` runs last (tests/conftest.py orders it): it scans every file
under the session's basetemp (warehouses, artifacts roots, sentinel outputs, the Airflow tier's home with its
task logs, the PostgreSQL data folders), the session's AIRFLOW_HOME (dag.test()'s metadata database with its
XCom), the control tables of every database of every test PostgreSQL (and every table of the tier's Airflow
metadata database: XCom, logs, rendered fields), and the alert payloads the test webhooks received.
"""

from __future__ import annotations

import psycopg
import pytest

from include.control.repository import ControlRepository
from tests import canary

PLANTED = "canary-planted-0123456789"


def test_the_scan_finds_a_canary_planted_in_a_file_in_a_row_and_in_an_alert(tmp_path, control_url):
    """Proves the final check cannot pass silently: a canary in a log line, one across the boundary of two
    streamed blocks of a binary file, one in a dbconfig row and one in an alert payload are all found, each
    with its value blanked."""
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "task.log").write_text(f"INFO connecting with password={PLANTED} to db\n")
    boundary = canary.BLOCK - 3  # the canary's first bytes end one block, the rest start the next
    (folder / "part-0.parquet").write_bytes(b"\x00" * boundary + PLANTED.encode() + b"\xff" * 100)
    (folder / "clean.json").write_text('{"password": "***"}')
    name = psycopg.conninfo.conninfo_to_dict(control_url)["dbname"]
    ControlRepository(control_url, change_source="test").upsert_dbconfig("planted", "postgresql", {"password": PLANTED})
    try:
        file_hits, files, _ = canary.scan_folders([folder])
        row_hits, databases = canary.scan_server(control_url, only=name)
        alert_hits = canary.scan_payloads([("a planted alert", [{"text": f"failed: token {PLANTED}"}])])
    finally:  # nothing planted outlives the test: the final scan would find it
        for path in folder.iterdir():
            path.unlink()
        with psycopg.connect(control_url) as conn:  # the dead row stays in a heap file, which is not scanned
            conn.execute("DELETE FROM table_control_dbconfig WHERE db_config_key = 'planted'")

    assert (files, databases) == (3, 1)
    assert sorted(h.where.rsplit("/", 1)[-1] for h in file_hits) == ["part-0.parquet", "task.log"]
    assert [h.where for h in row_hits] == [f"database {name}, table table_control_dbconfig"]
    assert [h.where for h in alert_hits] == ["a planted alert"]
    for hit in file_hits + row_hits + alert_hits:
        assert "canary-***" in str(hit) and "0123456789" not in str(hit)
    assert "password=canary-*** to db" in next(str(h) for h in file_hits if h.where.endswith("task.log"))


def test_nothing_the_tests_wrote_holds_a_canary(tmp_path_factory, request):
    folders, servers, by_design, payloads = canary.registered()
    roots = [tmp_path_factory.getbasetemp(), *(f for f in folders if f.exists())]

    hits, files, size = canary.scan_folders(roots)
    databases = 0
    for url in servers:
        try:
            server_hits, count = canary.scan_server(url)
        except psycopg.OperationalError:  # a server a test stopped on purpose (the fault tests) and left down
            continue
        hits += server_hits
        databases += count
    hits += canary.scan_payloads()

    summary = (
        f"scanned {files} files ({size / 1e6:.0f} MB), {databases} databases on {len(servers)} servers, "
        f"{payloads} alert payloads; skipped by design: {len(by_design)} files"
    )
    request.config.stash[canary.SUMMARY] = summary
    if hits:
        pytest.fail(
            f"a password or token of the tests ({canary.CANARY}...) was written where it must not be ({summary}):\n"
            + "\n".join(f"  {h}" for h in hits),
            pytrace=False,
        )
