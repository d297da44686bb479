"""A trigger that polls a source table for rows past a watermark, without holding a worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from dataplatform.hooks.source import asource_params
from include.dataloader.dialects import ConnectionParams, dialect_for


def count_rows(db_type: str, params: ConnectionParams, count_sql: str, watermark_rows: int | None = None) -> int:
    """Run the count query through the project's own driver for ``db_type`` (blocking).

    Without ``watermark_rows``, the query's first column is the count. With it, the query returns
    ``changes`` (rows past the watermark) and ``at_watermark`` (rows at it), and the count is
    ``changes + max(0, at_watermark - watermark_rows)``: as check_and_load counts, the source's rows at
    the watermark that the target (which had ``watermark_rows`` there) does not have yet are changes.
    """
    with closing(dialect_for(db_type).connect(params)) as conn:
        cursor = conn.cursor()
        cursor.execute(count_sql)
        row = cursor.fetchone()
    changes = int(row[0])
    if watermark_rows is None:
        return changes
    return changes + max(int(row[1]) - watermark_rows, 0)


class SourceChangesTrigger(BaseTrigger):
    """Polls ``count_sql`` (a COUNT of rows past the watermark) until it is positive or ``deadline`` passes.

    With ``watermark_rows`` (the target's rows at the watermark when it was committed), ``count_sql``
    also returns the source's rows at the watermark, and those beyond ``watermark_rows`` count too: a
    row committed later with the watermark's very value is a change (see :func:`count_rows`).

    Yields one event: ``{"status": "changes", "count": n}`` or ``{"status": "timeout"}``. The source is the
    Airflow connection ``conn_id`` (the row's db_config_key), read with the driver of ``db_type``; the
    blocking query runs in a thread, so the triggerer's event loop never waits on a database.

    :param conn_id: the source's Airflow connection (the row's db_config_key).
    :param db_type: the dbconfig's db_type, which picks the driver.
    :param count_sql: the change-count query, in the source's dialect.
    :param deadline: ISO timestamp (with time zone) after which the trigger gives up.
    :param poll_interval: seconds between polls.
    :param watermark_rows: the target's rows at the watermark; None: only rows past it count.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        db_type: str,
        count_sql: str,
        deadline: str,
        poll_interval: float = 60.0,
        watermark_rows: int | None = None,
    ):
        super().__init__()
        self.conn_id = conn_id
        self.db_type = db_type
        self.count_sql = count_sql
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.watermark_rows = watermark_rows

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "db_type": self.db_type,
                "count_sql": self.count_sql,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "watermark_rows": self.watermark_rows,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline)
        # the task counted just before deferring: a count at once would only open Airflow 3.3's window in
        # which a trigger firing within a second fails the resumed try (apache/airflow#72716)
        left = (deadline - datetime.now(deadline.tzinfo)).total_seconds()
        await asyncio.sleep(max(0.0, min(self.poll_interval, left)))
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
        params = await asource_params(self.conn_id)
        return await asyncio.to_thread(count_rows, self.db_type, params, self.count_sql, self.watermark_rows)
