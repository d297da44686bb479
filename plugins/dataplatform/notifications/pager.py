"""The monitors' pager: an alert to a row's target, through the same notifier as task failures."""

from __future__ import annotations

from dataplatform.notifications.alerts import Alert, AlertNotifier


class AlertPager:
    def page(self, target: str | None, title: str, text: str, control_key: str) -> None:
        AlertNotifier(target=target, alert=Alert(title=title, text=text, control_key=control_key)).notify({})
