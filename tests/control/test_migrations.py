import psycopg
import pytest

from include.control import migrate
from tests.control.helpers import add, execute

TABLES = {"table_control_dbconfig", "table_control", "historical_metadata", "table_control_history"}


def _tables(url):
    return {r[0] for r in execute(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_upgrade_from_empty_creates_every_table_and_records_head(new_database):
    url = new_database()
    assert migrate.current_revision(url) is None

    migrate.upgrade(url)

    assert _tables(url) >= TABLES
    assert migrate.current_revision(url) == migrate.head_revision()


def test_upgrade_is_idempotent_and_downgrade_removes_everything(new_database):
    url = new_database()
    migrate.upgrade(url)
    migrate.upgrade(url)  # nothing pending: a no-op, not an error

    migrate.downgrade(url, "base")

    assert not TABLES & _tables(url)
    assert migrate.current_revision(url) is None


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ("load_strategy = 'merge'", "load_strategy_known"),
        ("last_status = 'Running'", "last_status_known"),
        ("incremental_column = NULL, incremental_type = NULL", "strategy_needs_cursor"),
        ("primary_key_columns = '{}'", "strategy_needs_primary_key"),
        ("incremental_type = 'float'", "incremental_type_known"),
        ("incremental_type = NULL", "cursor_has_type"),
        ("load_strategy = 'rolling'", "rolling_needs_window"),
        ("chunk_size = 0", "chunk_settings_positive"),
        ("retry_count = -1", "retry_count_not_negative"),
    ],
)
def test_the_database_refuses_rows_that_bypass_the_cli(repo, control_url, changes, constraint):
    add(repo)
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        execute(control_url, f"UPDATE table_control SET {changes} WHERE control_key = 'sales.orders'")


def test_unknown_db_type_is_refused_by_the_database(control_url):
    with pytest.raises(psycopg.errors.CheckViolation, match="dbconfig_db_type_known"):
        execute(control_url, "INSERT INTO table_control_dbconfig (db_config_key, db_type) VALUES ('x', 'mysql')")


def test_a_rows_latest_runs_come_from_the_key_id_index_not_a_sort(repo, control_url):
    add(repo)
    execute(  # 100 runs each of 50 rows, interleaved as the scheduler writes them
        control_url,
        """INSERT INTO historical_metadata (control_key, run_id, load_status)
           SELECT CASE WHEN n % 50 = 0 THEN 'sales.orders' ELSE 'other.t' || n % 50 END, 'run-' || n, 'Succeeded'
             FROM generate_series(1, 5000) AS n""",
    )
    execute(control_url, "ANALYZE historical_metadata")

    latest = repo.latest_runs("sales.orders", 3)
    [(plan,)] = execute(
        control_url,
        "EXPLAIN (FORMAT JSON) SELECT * FROM historical_metadata "
        "WHERE control_key = 'sales.orders' ORDER BY id DESC LIMIT 3",
    )

    assert [r["run_id"] for r in latest] == ["run-4900", "run-4950", "run-5000"]  # oldest first
    scan = plan[0]["Plan"]["Plans"][0]
    assert (scan["Node Type"], scan["Index Name"]) == ("Index Scan", "historical_metadata_key_id_idx")
    assert scan["Scan Direction"] == "Backward"
