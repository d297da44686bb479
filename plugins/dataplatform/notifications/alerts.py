"""Paging on-call: one alert format, delivered to whatever a row's ``alert_target`` names.

- ``https://...``: a webhook (JSON POST), the default (Slack and Teams incoming webhooks, Opsgenie,
  PagerDuty Events API gateways all take one);
- ``conn:<conn_id>``: an Airflow connection holding the webhook URL (host, or ``extra.webhook_url``),
  so the URL's secret part lives in the secrets backend;
- ``mailto:<address>``: e-mail through the SMTP provider's notifier (connection ``smtp_default``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from airflow.sdk import BaseHook, BaseNotifier

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Alert:
    title: str
    text: str
    severity: str = "error"
    control_key: str | None = None
    links: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The alert as JSON: ``text`` is the whole message (what Slack and Teams webhooks show),
        the other keys the parts, for receivers that route on them."""
        lines = [f"*{self.title}*", self.text, *(f"{name}: {url}" for name, url in self.links.items())]
        fields = asdict(self)
        fields["detail"] = fields.pop("text")
        return {**fields, "text": "\n".join(lines)}


def webhook_url(target: str) -> str:
    if target.startswith(("https://", "http://")):
        return target
    if target.startswith("conn:"):
        conn = BaseHook.get_connection(target.removeprefix("conn:"))
        url = conn.extra_dejson.get("webhook_url") or conn.host
        if not url:
            raise ValueError(f"alert target {target!r}: the connection has no host or extra.webhook_url")
        return url if "://" in url else f"https://{url}"
    raise ValueError(
        f"alert target {target!r} is not a webhook; use https://..., conn:<connection id> or mailto:<address>"
    )


class AlertNotifier(BaseNotifier):
    """Sends an :class:`Alert` to a target; usable as a callback and from the triggerer (async).

    :param target: where to (see the module docstring); nothing is sent when it is empty.
    """

    def __init__(self, *, target: str | None, alert: Alert):
        super().__init__()
        self.target = target
        self.alert = alert

    def _delivered_without_http(self) -> bool:
        """No target (logged), or e-mail: nothing left to POST."""
        if not self.target:
            log.warning("no alert target for %s: %s", self.alert.control_key, self.alert.title)
            return True
        if self.target.startswith("mailto:"):
            self._email()
            return True
        return False

    def notify(self, context) -> None:
        if self._delivered_without_http():
            return
        response = httpx.post(webhook_url(self.target), json=self.alert.payload(), timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        log.info("alert sent for %s: %s", self.alert.control_key, self.alert.title)

    async def async_notify(self, context) -> None:
        if self._delivered_without_http():
            return
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            response = await client.post(webhook_url(self.target), json=self.alert.payload())
            response.raise_for_status()
        log.info("alert sent for %s: %s", self.alert.control_key, self.alert.title)

    def _email(self) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        text = "<br>".join([self.alert.text, *(f'<a href="{u}">{n}</a>' for n, u in self.alert.links.items())])
        SmtpNotifier(to=self.target.removeprefix("mailto:"), subject=self.alert.title, html_content=text).notify({})
