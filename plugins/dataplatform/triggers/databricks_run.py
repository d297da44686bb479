"""The trigger a deferred Databricks load waits on: the provider's, first polling one period after it starts.

The operator has just seen the run working when it defers, so an immediate poll learns nothing; and a run
that ends within the first second opens a window in Airflow 3.3's scheduler: the executor's success event of
the try's defer-exit, drained after the resumed try is already running, fails that try as a state mismatch
(apache/airflow#72716). One period of patience closes it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger


class DatabricksRunTrigger(DatabricksExecutionTrigger):
    """:class:`DatabricksExecutionTrigger` that sleeps ``polling_period_seconds`` before its first poll."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self):
        await asyncio.sleep(self.polling_period_seconds)
        async for event in super().run():
            yield event
