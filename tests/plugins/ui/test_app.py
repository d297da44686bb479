"""The operator page on the real control database: what it shows, what an operator may change, and what a
read-only user may not."""

from __future__ import annotations

import re

import pytest

from include.control.repository import ControlRepository
from tests.control.helpers import execute, row
from tests.plugins.ui.conftest import OPERATOR

SECRET = "canary-ui-source-password"
KEY = "sales.orders"


@pytest.fixture
def repo(control_url) -> ControlRepository:
    repo = ControlRepository(control_url, change_source="test")
    repo.upsert_dbconfig("sales_pg", "postgresql", {"host": "kv-sales-host", "password": SECRET}, "kv-sales")
    repo.upsert_dbconfig("crm_ora", "oracle", {"url": f"oracle://loader:{SECRET}@crm:1521/CRM"})
    return repo


def keys(page) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', page.text)


def failed(repo, key: str, message: str) -> None:
    repo.queue(key, "manual__1")
    repo.start(key, "manual__1")
    repo.fail(key, "manual__1", message)


def test_the_rows_page_filters_by_status_source_and_strategy_and_pages(ui, repo):
    for n in range(55):
        repo.add(row(f"sales.t{n:02d}", load_strategy="full" if n % 5 == 0 else "incremental"))
    repo.add(row("crm.accounts", db_config_key="crm_ora"))
    failed(repo, "sales.t03", "ORA-12170: TNS:Connect timeout occurred")
    ops = ui()

    first = ops.get("/")
    assert first.status_code == 200
    assert "56 rows, page 1 of 2" in first.text
    assert keys(first) == ["crm.accounts"] + [f"sales.t{n:02d}" for n in range(49)]
    assert keys(ops.get("/", params={"page_number": 2})) == [f"sales.t{n:02d}" for n in range(49, 55)]
    assert keys(ops.get("/", params={"status": "Failed"})) == ["sales.t03"]
    assert "sales.t03" not in keys(ops.get("/", params={"status": "Never loaded"}))
    assert keys(ops.get("/", params={"source": "crm_ora"})) == ["crm.accounts"]
    assert keys(ops.get("/", params={"strategy": "full", "source": "sales_pg"})) == [
        f"sales.t{n:02d}" for n in range(0, 55, 5)
    ]


def test_a_row_page_shows_its_runs_changes_links_and_retry_analysis(ui, repo):
    repo.add(row(KEY))
    repo.queue(KEY, "manual__ok")
    repo.start(KEY, "manual__ok", airflow_run_url="http://airflow.example/dags/sales.orders/runs/manual__ok")
    repo.succeed(KEY, "manual__ok", rows_processed=7, watermark="2024-05-01 10:00:00")
    failed(repo, KEY, "ORA-12170: TNS:Connect timeout occurred")
    repo.reset_for_retry(KEY, note="[AI: Retry Recommended]")
    failed(repo, KEY, "ORA-12170: TNS:Connect timeout occurred")  # a run id already used: recorded once

    page = ui().get(f"/rows/{KEY}")

    assert page.status_code == 200
    runs = page.text.split('id="runs"')[1].split("</table>")[0]
    assert "manual__ok" in runs and "Succeeded" in runs
    assert "2024-05-01 10:00:00" in page.text  # the watermark
    assert 'href="http://airflow.example/dags/sales.orders/runs/manual__ok"' in page.text
    assert "[AI: Retry Recommended]" in page.text.split('id="recorded-analysis"')[1].split("</p>")[0]
    assert "<b>RETRY</b>" in page.text.split('id="analysis"')[1]  # the rules' reading of the current error
    changes = page.text.split('id="changes"')[1].split("</table>")[0]
    assert changes.count("<tr>") == len(repo.history(KEY)) + 1  # a header and every change (fewer than 20)


def test_under_a_path_prefix_the_links_into_airflow_and_the_pages_own_links_and_redirects_keep_it(ui, repo):
    repo.add(row(KEY))
    repo.queue(KEY, "manual__2024-05-01T10:00:00+00:00")  # a run the page links to from its id alone
    ops = ui(root_path="/airflow")

    page = ops.get(f"/rows/{KEY}")

    assert page.status_code == 200
    links = set(re.findall(r'href="([^"]+)"', page.text))
    assert {
        "/airflow/",
        "/airflow/dags/sales.orders",
        "/airflow/dags/sales.orders/runs/manual__2024-05-01T10%3A00%3A00%2B00%3A00",
        "http://testserver/airflow/dataplatform/",
        "http://testserver/airflow/dataplatform/comparisons",
    } <= links
    assert not [link for link in links if "/dataplatform" in link and "/airflow/dataplatform" not in link]
    repo.add(row("sales.returns"))
    done = ops.post("/rows/sales.returns/deactivate")
    assert done.status_code == 303
    assert done.headers["location"].startswith("http://testserver/airflow/dataplatform/rows/sales.returns?done=")
    plain = ui().get(f"/rows/{KEY}")  # and without one, at Airflow's root
    assert 'href="/dags/sales.orders"' in plain.text and 'href="http://testserver/dataplatform/"' in plain.text


def test_an_edit_with_an_invalid_value_shows_the_cli_message_and_changes_nothing(ui, repo, cli, control_url):
    repo.add(row(KEY))
    before = repo.get(KEY)
    code, _, cli_error = cli("tables", "update", KEY, "--set", "chunk_size=lots")
    assert code == 2

    page = ui().post(f"/rows/{KEY}/edit", {"cron": "*/5 * * * *", "chunk_size": "lots"})

    assert page.status_code == 400
    message = page.text.split('id="error">')[1].split("</p>")[0]
    import html

    from include.dataloader.cli import one_line

    assert one_line(html.unescape(message).strip()) in cli_error  # the CLI's words (a line per problem on the page)
    assert "chunk_size" in message and "whole number" in message
    assert repo.get(KEY)["cron"] == before["cron"]  # the valid field is not saved either
    assert 'value="lots"' in page.text  # the form keeps what was typed


def test_an_edit_is_validated_as_a_whole_row_and_recorded_with_the_users_name(ui, repo):
    repo.add(row(KEY))
    ops = ui()

    refused = ops.post(f"/rows/{KEY}/edit", {"load_strategy": "rolling"})
    assert refused.status_code == 400
    assert "rolling_column" in refused.text and repo.get(KEY)["load_strategy"] == "incremental"

    saved = ops.post(f"/rows/{KEY}/edit", {"cron": "*/5 * * * *", "primary_key_columns": "order_id,line_no"})

    assert saved.status_code == 303
    changed = repo.get(KEY)
    assert (changed["cron"], changed["primary_key_columns"]) == ("*/5 * * * *", ["order_id", "line_no"])
    last = repo.history(KEY)[-1]
    assert last["change_source"] == f"ui:{OPERATOR}"
    assert last["new_values"]["cron"] == "*/5 * * * *"
    assert "updated sales.orders" in ops.get(saved.headers["location"]).text


def test_reset_and_deactivate_are_the_guarded_transitions(ui, repo):
    repo.add(row(KEY))
    ops = ui()

    refused = ops.post(f"/rows/{KEY}/reset")
    assert refused.status_code == 400
    assert "only a Failed row can be reset; last_status is empty" in refused.text

    failed(repo, KEY, "boom")
    execute(repo.url, "UPDATE table_control SET retry_count = 3 WHERE control_key = %s", (KEY,))
    assert ops.post(f"/rows/{KEY}/reset").status_code == 303
    reset = repo.get(KEY)
    assert (reset["last_status"], reset["retry_count"]) == (None, 0)
    assert reset["last_status_message"].startswith(f"[Reset by {OPERATOR} (Airflow UI)]")

    assert ops.post(f"/rows/{KEY}/deactivate").status_code == 303
    assert repo.get(KEY)["is_active"] is False
    sources = {h["change_source"] for h in repo.history(KEY)[1:]}
    assert f"ui:{OPERATOR}" in sources

    refused = ops.post(f"/rows/{KEY}/trigger")
    assert refused.status_code == 400
    assert f"{KEY}: is_active is false, so it is not loaded" in refused.text


def test_a_row_is_added_with_the_clis_validation(ui, repo, cli):
    ops = ui()
    fields = {
        "control_key": "sales.lines",
        "db_config_key": "sales_pg",
        "source_table_name": "lines",
        "destination_schema": "sales",
        "destination_table_name": "lines",
        "load_strategy": "incremental",
        "cron": "@daily",
    }
    code, _, cli_error = cli("tables", "add", *[f"--{k.replace('_', '-')}={v}" for k, v in fields.items()])
    assert code == 2 and repo.get("sales.lines") is None

    refused = ops.post("/new", fields)

    import html

    text = html.unescape(refused.text)
    assert refused.status_code == 400
    for problem in re.findall(r"  - (.+)", cli_error):
        assert problem in text
    assert repo.get("sales.lines") is None

    added = ops.post(
        "/new", {**fields, "incremental_column": "id", "incremental_type": "integer", "primary_key_columns": "id"}
    )
    assert added.status_code == 303
    assert repo.get("sales.lines")["primary_key_columns"] == ["id"]
    assert repo.history("sales.lines")[0]["change_source"] == f"ui:{OPERATOR}"


def test_a_dbconfig_is_saved_masked_and_its_masked_secret_kept(ui, repo, cli):
    ops = ui()
    page = ops.get("/dbconfigs")
    assert SECRET not in page.text and "kv-sales-host" in page.text

    saved = ops.post(
        "/dbconfigs",
        {
            "db_config_key": "sales_pg",
            "db_type": "postgresql",
            "db_kv_scope": "kv-sales",
            "db_config_value": '{"host": "kv-sales-host-2", "password": "***"}',
        },
    )

    assert saved.status_code == 303
    assert repo.get_dbconfig("sales_pg")["db_config_value"] == {"host": "kv-sales-host-2", "password": SECRET}
    code, _, cli_error = cli("dbconfig", "add", "x", "--db-type", "postgresql", "--value", "{not json")
    refused = ops.post("/dbconfigs", {"db_config_key": "x", "db_type": "postgresql", "db_config_value": "{not json"})
    import html

    assert refused.status_code == 400 and code == 2
    assert html.unescape(refused.text.split('id="error">')[1].split("</p>")[0]) in cli_error
    assert repo.get_dbconfig("x") is None


def test_a_read_only_user_sees_no_action_and_gets_403_on_every_one(ui, repo):
    repo.add(row(KEY))
    failed(repo, KEY, "boom")
    viewer, ops = ui("viewer"), ui()
    csrf = ops.csrf()  # even a valid form token of another user does not help
    before = (repo.get(KEY), repo.get_dbconfig("sales_pg"), len(repo.history(KEY)))

    page = viewer.get(f"/rows/{KEY}")
    assert page.status_code == 200 and "(read-only)" in page.text
    assert "<form" not in page.text.split('id="analysis"')[1]
    actions = [f"/rows/{KEY}/{a}" for a in ("edit", "reset", "deactivate", "trigger")] + ["/new", "/dbconfigs"]
    form = {"cron": "@hourly", "control_key": "x.y", "db_config_key": "sales_pg", "db_type": "oracle"}
    for path in actions:
        for token in (viewer.csrf(), csrf, ""):
            assert viewer.post(path, form, csrf=token).status_code == 403, path
    assert (repo.get(KEY), repo.get_dbconfig("sales_pg"), len(repo.history(KEY))) == before


def test_an_action_needs_the_users_own_form_token(ui, repo):
    repo.add(row(KEY))
    ops = ui()
    for token in ("", "0" * 64):
        answer = ops.post(f"/rows/{KEY}/deactivate", csrf=token)
        assert answer.status_code == 403 and "stale or from another site" in answer.text
    assert repo.get(KEY)["is_active"] is True


def test_without_a_login_the_pages_send_to_airflows_login(ui, repo):
    client = ui().client
    client.cookies.clear()
    answer = client.get("/comparisons", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/auth/login?next=")
    client.cookies.set("_token", "canary-not-a-jwt")
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.post(f"/rows/{KEY}/reset", data={"csrf": "x"}).status_code == 401


def test_no_page_shows_a_secret(ui, repo, artifacts):
    repo.add(row(KEY))
    failed(repo, KEY, f"could not connect to postgresql://loader:{SECRET}@db:5432/sales password={SECRET}")
    execute(
        repo.url,
        "INSERT INTO sentinel_audit (session_id, table_name, event, details) VALUES ('s1', 'hr.emp', "
        "'COMPARISON_FAILED', %s)",
        ('{"error": "OperationalError: oracle://u:' + SECRET + '@prod/ORCL"}',),
    )
    for browser in (ui(), ui("viewer")):
        for path in ("/", f"/rows/{KEY}", "/dbconfigs", "/comparisons", "/new", "/rows/nope"):
            page = browser.get(path)
            assert page.status_code in (200, 404), path
            assert SECRET not in page.text, path
        assert "could not connect to postgresql://loader:***@db" in browser.get(f"/rows/{KEY}").text


def write_run(artifacts, folder: str, stamp: str, tables: list[tuple[str, int, int, int]]) -> None:
    run = artifacts / folder
    run.mkdir(parents=True)
    lines = ["table,status,missing_in_target,missing_in_source,different"]
    lines += [f"{t},completed,{a},{b},{c}" for t, a, b, c in tables]
    (run / f"comparison_report_{stamp}.csv").write_text("\n".join(lines) + "\n")
    for t, a, b, c in tables:
        if a + b + c:
            (run / f"sync_target_{t.upper().replace('.', '_')}_{stamp}_abcdefgh.sql").write_text(f"-- sync {t}\n")


def test_the_comparisons_page_lists_runs_with_counts_and_serves_their_files(ui, repo, artifacts, tmp_path):
    write_run(artifacts, "db_sentinel_hr/manual__1", "20240501_100000", [("hr.emp", 2, 1, 3), ("hr.dept", 0, 0, 0)])
    write_run(artifacts, "cli-output", "20240502_090000", [("fin.gl", 0, 0, 0)])
    sql_file = artifacts / "db_sentinel_hr/manual__1/sync_target_HR_EMP_20240501_100000_abcdefgh.sql"
    execute(
        repo.url,
        "INSERT INTO sentinel_audit (session_id, table_name, event, details) VALUES ('manual__1', 'hr.emp', "
        "'COMPARISON_END', %s)",
        ('{"results": {"missing_in_target": 2, "different": 3, "sql_file": "file://' + str(sql_file) + '"}}',),
    )
    (tmp_path / "outside.sql").write_text("-- not served\n")
    (artifacts / "escape.sql").symlink_to(tmp_path / "outside.sql")
    ops = ui()

    page = ops.get("/comparisons")

    reports = page.text.split('id="reports"')[1].split("</table>")[0]
    hr = next(r for r in reports.split("<tr>") if "db_sentinel_hr/manual__1" in r)
    assert re.findall(r"<td>(\d+)</td>", hr) == ["2", "1", "3"]
    assert hr.count('class="sync-sql"') == 1
    report_link = re.search(r'class="report" href="([^"]+)"', hr).group(1)
    download = ops.client.get(report_link)
    assert download.status_code == 200 and download.text.startswith("table,status")
    assert "attachment" in download.headers["content-disposition"]
    recorded = page.text.split('id="results"')[1]
    sql_link = re.search(r'href="([^"]+)">sync SQL', recorded).group(1)
    assert ops.client.get(sql_link).text == "-- sync hr.emp\n"
    for name in ("../outside.sql", "%2e%2e/outside.sql", "escape.sql", str(tmp_path / "outside.sql"), "cli-output"):
        assert ops.get(f"/artifacts/{name}").status_code == 404, name
