"""The monitors on the real stack: they reach Airflow's REST API through the `airflow_api` connection."""

from tests.airflow.conftest import control_row


def test_the_reconciler_asks_the_api_and_fails_a_row_whose_run_airflow_never_had(tier):
    repo = tier.repository()
    repo.add(control_row("ghost", "full"))
    repo.queue("tier.ghost", "manual__never_in_airflow")  # e.g. a run deleted from the UI
    tier.wait_dags("dataloader_reconciler")
    tier.unpause("dataloader_reconciler")

    run_id = tier.trigger("dataloader_reconciler")

    assert tier.wait_run("dataloader_reconciler", run_id) == "success"
    row = repo.get("tier.ghost")
    assert row["last_status"] == "Failed"
    assert "Airflow run manual__never_in_airflow does not exist" in row["last_status_message"]
