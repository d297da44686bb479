"""Callbacks that page on-call: a missed deadline (async, run by the triggerer) and a failed task."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

from dataplatform.exceptions import RunRefused
from dataplatform.links import airflow_dag_url, airflow_run_url
from dataplatform.notifications.alerts import Alert, AlertNotifier
from include.dataloader.redact import redact


async def deadline_missed(context: Any = None, **kwargs: Any) -> None:
    """A DAG run missed its deadline (the row's sla_minutes since it was queued).

    Called by the triggerer with the ``kwargs`` given to the DAG's DeadlineAlert, and a context whose
    ``dag_run`` is the run (as the REST API shows it). The links are built here, in the triggerer, from the
    ``[api] base_url`` that every component shares (the DAG files' parse would bake in a stale one).
    """
    key, minutes, dag_id = kwargs["control_key"], kwargs["sla_minutes"], kwargs["dag_id"]
    run_id = ((context or {}).get("dag_run") or {}).get("dag_run_id")
    links = {"DAG": airflow_dag_url(dag_id)}
    if run_id:
        links["Airflow run"] = airflow_run_url(dag_id, run_id)
    alert = Alert(
        title=f"{key}: load not finished {minutes} minutes after it was queued",
        text=f"DAG {dag_id} missed its deadline of {minutes} minutes. Check the run's tasks and the "
        "source database; the long-running monitor cancels loads that exceed their limit.",
        severity="warning",
        control_key=key,
        links=links,
    )
    await AlertNotifier(target=kwargs.get("alert_target"), alert=alert).async_notify(context or {})


class TaskFailureAlert(BaseNotifier):
    """``on_failure_callback`` of loader and sentinel tasks: the error and the links, to the alert target;
    not for a refused request (``RunRefused``), which is the operator's to fix, not on-call's.

    :param subject: what failed, e.g. the control key.
    :param target: the alert target (webhook URL, ``conn:<id>`` or ``mailto:<address>``).
    """

    def __init__(self, *, subject: str, target: str | None, extra_links: dict[str, str] | None = None):
        super().__init__()
        self.subject = subject
        self.target = target
        self.extra_links = extra_links or {}

    def build(self, context) -> Alert:
        ti = context["ti"]
        error = context.get("exception")
        links = {"Airflow run": airflow_run_url(ti.dag_id, ti.run_id), **self.extra_links}
        return Alert(
            title=f"{self.subject}: task {ti.task_id} failed (try {ti.try_number})",
            text=redact(f"{type(error).__name__}: {error}") if error else "the task failed",
            control_key=self.subject,
            links={k: v for k, v in links.items() if v},
        )

    def notify(self, context) -> None:
        if isinstance(context.get("exception"), RunRefused):
            self.log.info("not paged: %s refused the run's own request; the task's error says why", self.subject)
            return
        AlertNotifier(target=self.target, alert=self.build(context)).notify(context)
