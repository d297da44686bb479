"""Load verification on the real scheduler: a verified load, then a drift in bronze caught when verify is cleared."""

from urllib.parse import quote

from deltalake import DeltaTable

from tests.airflow.conftest import ORDERS, control_row, create_orders


def test_verify_passes_after_the_load_and_a_cleared_verify_catches_a_bronze_drift_and_pages(tier):
    create_orders(tier, "verified")
    alerts = f"{tier.alerts.base}/verified"
    tier.repository().add(control_row("verified", "incremental", **ORDERS, verify=True, alert_target=alerts))
    tier.refresh_snapshot("tier.verified")

    run_id = tier.trigger("tier.verified")

    assert tier.wait_run("tier.verified", run_id) == "success", tier.task_states("tier.verified", run_id)
    assert tier.task_states("tier.verified", run_id)[("verify", -1)] == "success"
    [history] = tier.history("tier.verified", run_id)
    assert (history["verify_status"], history["verify_result"]["matching"]) == ("equal", 12)

    row = tier.repository().get("tier.verified")
    path = tier.stack.home / "dataloader" / "warehouse" / row["destination_catalog"] / "tier" / "verified"
    DeltaTable(str(path)).delete("order_id = 3")  # behind the loader's back
    body = {
        "dry_run": False,
        "dag_run_id": run_id,
        "reset_dag_runs": True,
        "only_failed": False,
        "task_ids": ["verify"],
    }
    tier.call("POST", f"/dags/{quote('tier.verified', safe='')}/clearTaskInstances", json=body)

    assert tier.wait_run("tier.verified", run_id) == "failed", tier.task_states("tier.verified", run_id)
    verify = tier.call("GET", tier.run_path("tier.verified", run_id) + "/taskInstances/verify")
    assert (verify["state"], verify["try_number"]) == ("failed", 2)
    [history] = tier.history("tier.verified", run_id)
    assert (history["load_status"], history["verify_status"]) == ("Succeeded", "mismatch")
    assert history["verify_result"]["keys"]["missing_in_target"] == [[3]]
    alert = tier.wait_alert("/verified", lambda a: "task verify failed" in a["title"])
    assert "1 failing: 1 missing in bronze, 0 in bronze only, 0 different" in alert["detail"]
    assert tier.repository().get("tier.verified")["last_status"] == "Succeeded"  # the load stays committed
