"""The alert callbacks, called directly (deadline callbacks never fire under dag.test(): FACTS.md)."""

import asyncio
import json
from types import SimpleNamespace

import pytest

from dataplatform.notifications.alerts import Alert, AlertNotifier, webhook_url
from dataplatform.notifications.callbacks import TaskFailureAlert, deadline_missed


def test_deadline_missed_posts_to_the_rows_webhook_with_the_dag_and_run_links(webhook, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example")
    asyncio.run(
        deadline_missed(
            # the context the triggerer passes: the run as the REST API shows it
            context={"dag_run": {"dag_id": "sales.orders", "dag_run_id": "manual__2024-01-01T00:00:00+00:00"}},
            control_key="sales.orders",
            dag_id="sales.orders",
            sla_minutes=30,
            alert_target=webhook.url,
        )
    )

    [alert] = webhook.received
    assert alert["title"] == "sales.orders: load not finished 30 minutes after it was queued"
    assert alert["severity"] == "warning"
    assert alert["control_key"] == "sales.orders"
    assert alert["links"] == {
        "DAG": "http://airflow.example/dags/sales.orders",
        "Airflow run": "http://airflow.example/dags/sales.orders/runs/manual__2024-01-01T00%3A00%3A00%2B00%3A00",
    }
    assert alert["text"].startswith("*sales.orders: load not finished 30 minutes")


def test_a_task_failure_alert_carries_the_error_and_the_links_without_secrets(webhook):
    ti = SimpleNamespace(dag_id="sales.orders", run_id="manual__1", task_id="load", try_number=2)
    error = RuntimeError("could not connect: postgresql://loader:canary-hunter2@db:5432/sales")

    TaskFailureAlert(subject="sales.orders", target=webhook.url, extra_links={"Databricks run": "https://dbx/run/1"})(
        {"ti": ti, "exception": error}
    )

    [alert] = webhook.received
    assert alert["title"] == "sales.orders: task load failed (try 2)"
    assert alert["detail"] == "RuntimeError: could not connect: postgresql://loader:***@db:5432/sales"
    assert "canary-hunter2" not in alert["text"]
    assert alert["links"] == {
        "Airflow run": "http://localhost:8080/dags/sales.orders/runs/manual__1",
        "Databricks run": "https://dbx/run/1",
    }


def test_a_connection_can_hold_the_webhook_url(webhook, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ONCALL", json.dumps({"conn_type": "http", "extra": {"webhook_url": webhook.url}}))
    assert webhook_url("conn:oncall") == webhook.url

    AlertNotifier(target="conn:oncall", alert=Alert(title="t", text="x")).notify({})
    assert webhook.received[0]["title"] == "t"


def test_an_unusable_target_says_what_to_use():
    with pytest.raises(ValueError, match=r"use https://\.\.\., conn:<connection id> or mailto:<address>"):
        webhook_url("#oncall-channel")


def test_no_target_sends_nothing(webhook):
    AlertNotifier(target=None, alert=Alert(title="t", text="x")).notify({})
    assert webhook.received == []
