"""Loads on the real stack: triggered through the REST API, the change sensor deferred in the triggerer."""

from tests.airflow.conftest import ORDERS, control_row, create_orders


def test_a_rest_triggered_load_succeeds(tier):
    create_orders(tier, "orders")
    tier.repository().add(control_row("orders", "incremental", **ORDERS))
    tier.refresh_snapshot("tier.orders")

    run_id = tier.trigger("tier.orders")

    assert tier.wait_run("tier.orders", run_id) == "success", tier.task_states("tier.orders", run_id)
    assert tier.task_states("tier.orders", run_id) == {("queue", -1): "success", ("load", -1): "success"}
    target = tier.warehouse_table("tier.orders")
    assert sorted(target.column("order_id").to_pylist()) == list(range(1, 13))
    row = tier.repository().get("tier.orders")
    assert (row["last_status"], row["rows_processed"], row["incremental_value"]) == (
        "Succeeded",
        12,
        "2024-01-04 00:00:00",
    )
    [history] = tier.history("tier.orders", run_id)
    assert (history["load_status"], history["rows_processed"]) == ("Succeeded", 12)
