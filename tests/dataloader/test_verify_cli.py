"""`dataloader verify KEY`: a source table against its bronze Delta table (real PostgreSQL, Delta on Sail)."""

from __future__ import annotations

import deltalake
import psycopg
import pytest

from include.dataloader.cli import main


@pytest.fixture
def verify(cli, capsys):
    """``verify(key) -> (exit status, stdout, stderr)`` of ``dataloader verify KEY``."""

    def run(key: str, *extra: str):
        capsys.readouterr()
        status = main(["verify", key, *extra])
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def cli_show(cli, capsys):
    def run(key: str):
        capsys.readouterr()
        status = main(["tables", "show", key])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def bronze(cli, key: str) -> deltalake.DeltaTable:
    return deltalake.DeltaTable(str(cli.warehouse.path(cli.target(key))))


ORDERS = {
    "incremental_column": "updated_at",
    "incremental_type": "timestamp",
    "primary_key_columns": ["order_id"],
    "verify": True,
}


def test_incremental_is_equal_up_to_the_watermark_with_deletions_as_drift_and_misses_as_failures(
    cli, verify, cli_show, repo, source_sql
):
    source_sql(
        "CREATE TABLE orders (order_id int PRIMARY KEY, status text, amount numeric(12,2), updated_at timestamp)"
    )
    source_sql(
        "INSERT INTO orders SELECT g, 'new', g * 1.25, timestamp '2024-01-01' + g * interval '1 hour' "
        "FROM generate_series(1, 30) g"
    )
    key = cli.add("orders", "incremental", **ORDERS)
    cli.run(key)
    assert repo.get(key)["incremental_value"] == "2024-01-02 06:00:00"

    status, out, _ = verify(key)
    assert status == 0
    assert "bronze equal with its source" in out and "30 source rows, 30 bronze rows, 30 matching" in out
    [run] = repo.runs(key)
    assert (run["verify_status"], run["verify_result"]["matching"]) == ("equal", 30)

    # after the load: a row deleted at the source, one changed past the watermark (both drift), a row with a
    # NULL cursor (not compared), and one row past the watermark (not yet due)
    source_sql("DELETE FROM orders WHERE order_id = 3")
    source_sql("UPDATE orders SET status = 'shipped', updated_at = timestamp '2024-02-01' WHERE order_id = 4")
    source_sql("INSERT INTO orders VALUES (31, 'new', 1, NULL), (32, 'new', 1, timestamp '2024-03-01')")
    status, out, _ = verify(key)
    assert status == 0, out
    result = repo.runs(key)[0]["verify_result"]
    assert result["expected_drift"] == {"deleted_or_changed_at_source": 2}
    assert sorted(result["keys"]["deleted_or_changed_at_source"]) == [[3], [4]]
    assert result["null_cursor_rows_left_out"] == 1
    assert (result["source_rows"], result["target_rows"], result["failures"]) == (28, 30, 0)

    # a late row below the watermark that the load could not see, and a bronze row changed by hand: failures
    source_sql("INSERT INTO orders VALUES (40, 'late', 5, timestamp '2024-01-01 00:30')")
    bronze(cli, key).update(updates={"amount": "99"}, predicate="order_id = 7")
    status, _, err = verify(key)
    assert status == 1
    assert "2 failing: 1 missing in bronze, 2 in bronze only, 1 different" in err
    run = repo.runs(key)[0]
    assert run["verify_status"] == "mismatch" and run["load_status"] == "Succeeded"
    assert (run["verify_result"]["keys"]["missing_in_target"], run["verify_result"]["keys"]["different"]) == (
        [[40]],
        [[7]],
    )
    status, out, _ = cli_show(key)
    assert status == 0 and "verify_status" in out and "mismatch" in out.split("recent runs:")[1]
    assert run["verify_result"]["report"].startswith(str(cli.warehouse.root.parent / "artifacts" / "verify" / key))


def test_full_fails_on_every_difference_and_append_only_allows_extra_bronze_rows(cli, verify, repo, source_sql):
    source_sql("CREATE TABLE items (item_id int PRIMARY KEY, name text)")
    source_sql("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g")
    full = cli.add("items", "full", primary_key_columns=["item_id"], verify=True)
    source_sql("CREATE TABLE events (event_id bigint PRIMARY KEY, kind text)")
    source_sql("INSERT INTO events SELECT g, 'view' FROM generate_series(1, 10) g")
    appended = cli.add(
        "events",
        "append_only",
        incremental_column="event_id",
        incremental_type="integer",
        primary_key_columns=["event_id"],
        verify=True,
    )
    cli.run(full)
    cli.run(appended)

    source_sql("DELETE FROM items WHERE item_id = 2")
    source_sql("DELETE FROM events WHERE event_id = 2")
    status, _, err = verify(full)
    assert status == 1 and "1 failing: 0 missing in bronze, 1 in bronze only, 0 different" in err
    status, out, _ = verify(appended)
    assert status == 0 and "1 in bronze only allowed" in out


def test_bad_input_exits_2_naming_the_row_and_the_fix(cli, verify, source_sql, control_url, capsys):
    source_sql("CREATE TABLE items (item_id int PRIMARY KEY, name text)")
    key = cli.add("items", "full", primary_key_columns=["item_id"], verify=True)

    status, _, err = verify(key)
    assert status == 2 and f"{key}: no Succeeded load to verify; load it first (`dataloader run {key}`)" in err
    cli.repo.update(key, {"execution_target": "databricks"})
    status, _, err = verify(key)
    assert status == 2 and "execution_target is databricks" in err and "clear the run's verify task" in err
    cli.repo.update(key, {"execution_target": None})
    status, _, err = verify("no.such.row")
    assert status == 2 and "no table_control row with control_key 'no.such.row'" in err

    # the option needs a key: refused by `tables update` with the fix, and by the database for other writers
    capsys.readouterr()
    assert main(["tables", "update", key, "--set", "primary_key_columns="]) == 2
    assert "verify: needs primary_key_columns" in capsys.readouterr().err
    with psycopg.connect(control_url) as conn, pytest.raises(psycopg.errors.CheckViolation, match="verify_needs"):
        conn.execute("UPDATE table_control SET primary_key_columns = '{}' WHERE control_key = %s", (key,))
