"""A trigger that polls a source table for rows past a watermark, without holding a worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from dataplatform.hooks.control import postgres_conninfo


class SourceChangesTrigger(BaseTrigger):
    """Polls ``count_sql`` (a COUNT of rows past the watermark) until it is positive or ``deadline`` passes.

    Yields one event: ``{"status": "changes", "count": n}`` or ``{"status": "timeout"}``.

    :param conn_id: the source's Airflow connection (the row's db_config_key).
    :param count_sql: the change-count query, in the source's dialect.
    :param deadline: ISO timestamp (with time zone) after which the trigger gives up.
    :param poll_interval: seconds between polls.
    """

    def __init__(self, *, conn_id: str, count_sql: str, deadline: str, poll_interval: float = 60.0):
        super().__init__()
        self.conn_id = conn_id
        self.count_sql = count_sql
        self.deadline = deadline
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "count_sql": self.count_sql,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline)
        while True:
            count = await self.count()
            if count > 0:
                yield TriggerEvent({"status": "changes", "count": count})
                return
            if datetime.now(deadline.tzinfo) >= deadline:
                yield TriggerEvent({"status": "timeout"})
                return
            self.log.info("no changes yet in %s; next poll in %ss", self.conn_id, self.poll_interval)
            await asyncio.sleep(self.poll_interval)

    async def count(self) -> int:
        conn = await BaseHook.aget_connection(self.conn_id)
        if conn.conn_type == "postgres":
            import psycopg

            async with await psycopg.AsyncConnection.connect(postgres_conninfo(conn)) as pg:
                row = await (await pg.execute(self.count_sql)).fetchone()
        else:
            # other sources through their provider's DB-API hook, off the event loop
            hook = conn.get_hook()
            row = await asyncio.to_thread(hook.get_first, self.count_sql)
        return int(row[0])
