import psycopg

from tests.control.helpers import add, execute


def _history(url):
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM table_control_history ORDER BY id").fetchall()


def test_insert_records_the_whole_new_row(repo, control_url):
    add(repo)

    [entry] = _history(control_url)
    assert entry["change_type"] == "INSERT"
    assert entry["change_source"] == "test"
    assert entry["old_values"] is None
    assert entry["new_values"]["control_key"] == "sales.orders"
    assert entry["new_values"]["load_strategy"] == "incremental"
    assert entry["new_values"]["primary_key_columns"] == ["order_id"]


def test_update_records_only_the_changed_columns(repo, control_url):
    add(repo)
    repo.update("sales.orders", {"cron": "30 2 * * *", "sla_minutes": 45})

    entry = _history(control_url)[-1]
    assert entry["change_type"] == "UPDATE"
    # next_load_date_time follows the new cron; updated_at is bookkeeping and left out
    assert set(entry["old_values"]) == {"cron", "sla_minutes", "next_load_date_time"}
    assert entry["old_values"]["cron"] == "0 * * * *"
    assert entry["new_values"]["cron"] == "30 2 * * *"
    assert entry["old_values"]["sla_minutes"] is None
    assert entry["new_values"]["sla_minutes"] == 45


def test_an_update_that_changes_nothing_records_nothing(repo, control_url):
    add(repo)
    execute(control_url, "UPDATE table_control SET cron = cron")

    assert [e["change_type"] for e in _history(control_url)] == ["INSERT"]


def test_delete_records_the_whole_old_row_and_the_session_as_source(repo, control_url):
    add(repo)
    with psycopg.connect(control_url, application_name="dl-app") as conn:
        conn.execute("DELETE FROM table_control WHERE control_key = 'sales.orders'")

    entry = _history(control_url)[-1]
    assert entry["change_type"] == "DELETE"
    assert entry["change_source"] == "dl-app"
    assert entry["new_values"] is None
    assert entry["old_values"]["control_key"] == "sales.orders"
    assert entry["old_values"]["cron"] == "0 * * * *"


def test_status_transitions_are_recorded_too(repo, control_url):
    add(repo)
    repo.queue("sales.orders", "run-1")

    entry = _history(control_url)[-1]
    assert entry["old_values"]["last_status"] is None
    assert entry["new_values"]["last_status"] == "Queued"
    assert entry["new_values"]["current_run_id"] == "run-1"
