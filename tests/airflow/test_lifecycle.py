"""Re-execution on the real scheduler: a cleared load, a cleared failed chunk, a backfill of three intervals.

Airflow's state, the control row and historical_metadata must agree however a run is re-executed
(DESIGN.md principle 8). These need the lifecycle fixes (issue #11, items 1-6).
"""

from urllib.parse import quote

import pytest

from tests.airflow.conftest import ORDERS, control_row, create_orders

CHUNKED = {"incremental_column": "id", "incremental_type": "integer", "primary_key_columns": ["id"], "chunk_size": 5}


@pytest.fixture(scope="module")
def tables(tier):
    repo = tier.repository()
    create_orders(tier, "cleared")
    repo.add(control_row("cleared", "incremental", **ORDERS, alert_target=f"{tier.alerts.base}/cleared"))
    tier.source("CREATE TABLE chunks (id int PRIMARY KEY, amount numeric(12,2))")
    tier.source("INSERT INTO chunks SELECT g, g * 1.5 FROM generate_series(1, 12) g")
    repo.add(control_row("chunks", "chunked_backfill", **CHUNKED, alert_target=f"{tier.alerts.base}/chunks"))
    create_orders(tier, "backfilled")
    repo.add(control_row("backfilled", "incremental", **ORDERS, alert_target=f"{tier.alerts.base}/backfilled"))
    tier.refresh_snapshot("tier.cleared", "tier.chunks", "tier.backfilled")
    return tier


def clear(tier, dag_id: str, run_id: str, **options) -> None:
    body = {"dry_run": False, "dag_run_id": run_id, "reset_dag_runs": True, "only_failed": False, **options}
    tier.call("POST", f"/dags/{quote(dag_id, safe='')}/clearTaskInstances", json=body)


def test_a_successful_load_cleared_from_the_api_runs_again_and_succeeds(tables):
    tier = tables
    run_id = tier.trigger("tier.cleared")
    assert tier.wait_run("tier.cleared", run_id) == "success"

    clear(tier, "tier.cleared", run_id)

    assert tier.wait_run("tier.cleared", run_id) == "success", tier.task_states("tier.cleared", run_id)
    load = tier.call("GET", tier.run_path("tier.cleared", run_id) + "/taskInstances/load")
    assert (load["state"], load["try_number"]) == ("success", 2)  # it ran again, it did not skip
    history = tier.history("tier.cleared", run_id)
    assert history and {h["load_status"] for h in history} == {"Succeeded"}
    assert tier.repository().get("tier.cleared")["last_status"] == "Succeeded"
    assert tier.alerts_for("/cleared") == []  # nothing paged


def test_a_failed_chunk_cleared_with_its_downstream_is_retried_and_the_run_and_row_end_right(tables):
    tier = tables
    tier.source("UPDATE chunks SET amount = 'NaN' WHERE id = 7")  # chunk 1 (ids 6-10) fails its cast
    run_id = tier.trigger("tier.chunks")
    assert tier.wait_run("tier.chunks", run_id) == "failed"
    states = tier.task_states("tier.chunks", run_id)
    assert (states[("load_chunk", 1)], states[("finalize", -1)]) == ("failed", "upstream_failed"), states
    assert tier.repository().get("tier.chunks")["last_status"] == "Failed"

    tier.source("UPDATE chunks SET amount = 10.5 WHERE id = 7")  # the fix
    clear(tier, "tier.chunks", run_id, task_ids=[["load_chunk", 1]], include_downstream=True, only_failed=True)

    assert tier.wait_run("tier.chunks", run_id) == "success", tier.task_states("tier.chunks", run_id)
    target = tier.warehouse_table("tier.chunks").to_pydict()
    assert sorted(target["id"]) == list(range(1, 13))  # every row once: nothing duplicated, nothing lost
    assert float(dict(zip(target["id"], target["amount"], strict=True))[7]) == 10.5
    row = tier.repository().get("tier.chunks")
    assert (row["last_status"], row["load_strategy"], row["incremental_value"]) == ("Succeeded", "incremental", "12")
    assert tier.history("tier.chunks", run_id)[0]["load_status"] == "Succeeded"


def test_a_backfill_with_default_options_reloads_each_of_three_intervals(tables):
    tier = tables
    first = tier.trigger("tier.backfilled")
    assert tier.wait_run("tier.backfilled", first) == "success"
    tier.source("UPDATE backfilled SET status = 'fixed'")  # changed without moving the cursor

    tier.cli(
        "backfill", "create", "--dag-id", "tier.backfilled", "--from-date", "2024-01-01", "--to-date", "2024-01-03"
    )

    def backfill_runs():
        runs = tier.call("GET", "/dags/tier.backfilled/dagRuns", params={"run_type": "backfill"})["dag_runs"]
        return len(runs) == 3 and all(r["state"] in ("success", "failed") for r in runs) and runs

    runs = tier.stack.wait_for(backfill_runs, timeout=600, what="three backfill runs to end")
    assert [r["state"] for r in runs] == ["success"] * 3
    history = {h["run_id"]: h["load_status"] for h in tier.history("tier.backfilled")}
    assert [history.get(r["dag_run_id"]) for r in runs] == ["Succeeded"] * 3
    target = tier.warehouse_table("tier.backfilled").to_pylist()
    intervals = [(r["data_interval_start"][:19], r["data_interval_end"][:19]) for r in runs]
    for order in target:  # each interval's rows were reloaded, the others were not
        at = order["updated_at"].isoformat()
        expected = "fixed" if any(start <= at < end for start, end in intervals) else "new"
        assert (order["order_id"], order["status"]) == (order["order_id"], expected)
    assert tier.repository().get("tier.backfilled")["incremental_value"] == "2024-01-04 00:00:00"
