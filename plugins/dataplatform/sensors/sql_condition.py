"""Wait, deferred, until a SQL query on a connection returns a positive number (e.g. "the DR database
has caught up": a heartbeat or lag check). No worker slot is held while waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from dataplatform.hooks.source import source_params
from dataplatform.triggers.source_changes import SourceChangesTrigger, count_rows


class SqlConditionSensor(BaseOperator):
    """:param conn_id: the connection to query.
    :param db_type: its kind of database (``postgresql``, ``oracle``, ...), which picks the project's driver.
    :param sql: a query whose first column of the first row is positive when the condition holds.
    :param max_wait: how long to wait before skipping the run."""

    template_fields = ("sql",)

    def __init__(
        self, *, conn_id: str, db_type: str, sql: str, max_wait: timedelta, poll_interval: float = 30.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.conn_id, self.db_type, self.sql = conn_id, db_type, sql
        self.max_wait, self.poll_interval = max_wait, poll_interval

    def execute(self, context):
        count = count_rows(self.db_type, source_params(self.conn_id), self.sql)
        if count > 0:  # counted before deferring: the trigger's first count comes one interval later
            return count
        self.defer(
            trigger=SourceChangesTrigger(
                conn_id=self.conn_id,
                db_type=self.db_type,
                count_sql=self.sql,
                deadline=(datetime.now(UTC) + self.max_wait).isoformat(),
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict):
        if event["status"] != "changes":
            raise AirflowSkipException(f"the condition did not hold within {self.max_wait}: {self.sql}")
        return event["count"]
