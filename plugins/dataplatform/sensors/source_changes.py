"""check_and_load: wait, deferred, until the source has rows the load would bring: past the row's
watermark, or at it beyond the target's rows there (``watermark_rows``), as the strategy counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException

from dataplatform.hooks.control import ControlDatabaseHook
from dataplatform.hooks.source import source_params
from dataplatform.triggers.source_changes import SourceChangesTrigger, count_rows
from include.dataloader.dialects import dialect_for
from include.dataloader.queries import Cursor, SourceQueries


class SourceChangesSensor(BaseSensorOperator):
    """Succeeds when the source has rows to load (past the watermark, or late at it); skips the run when
    none come in time.

    The count query is built from the live control row when the task runs, and runs on the source's
    Airflow connection (``db_config_key``) through the project's own driver, as the load does. Deferred,
    it holds no worker slot while it waits; ``max_wait`` ends the wait, and the load, as skipped.

    :param control_key: the control row.
    :param max_wait: how long to wait for changes before skipping the run.
    :param poll_interval: seconds between two counts.
    """

    template_fields = ("control_key",)

    def __init__(
        self,
        *,
        control_key: str,
        max_wait: timedelta = timedelta(minutes=30),
        poll_interval: float = 60.0,
        control_conn_id: str = "dataloader_control",
        deferrable: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("soft_fail", True)  # no changes in time: the run is skipped, not failed
        super().__init__(poke_interval=poll_interval, timeout=max_wait.total_seconds(), **kwargs)
        self.control_key = control_key
        self.max_wait = max_wait
        self.poll_interval = poll_interval
        self.control_conn_id = control_conn_id
        self.deferrable = deferrable

    def count_sql(self) -> tuple[str, str, str, int | None] | None:
        """(source connection id, db_type, count query, target rows at the watermark), or None on a first
        load (everything is new). With the target's count known, the query also counts the source's rows
        at the watermark; without it (NULL ``watermark_rows``), only the rows past it."""
        row = ControlDatabaseHook(self.control_conn_id).repository().require(self.control_key)
        watermark = row["incremental_value"]
        if watermark is None:
            return None
        with_tz = row["incremental_type"] == "timestamp" and datetime.fromisoformat(watermark).tzinfo is not None
        cursor = Cursor(row["incremental_column"], row["incremental_type"], with_time_zone=with_tz)
        queries = SourceQueries(dialect_for(row["db_type"]), row["source_schema"], row["source_table_name"])
        at_rows = row.get("watermark_rows")
        sql = queries.change_count(cursor, watermark, at_watermark=at_rows is not None)
        return row["db_config_key"], row["db_type"], sql, at_rows

    def execute(self, context):
        if not self.deferrable:
            return super().execute(context)
        target = self.count_sql()
        if target is None:
            self.log.info("%s has no watermark yet: loading everything", self.control_key)
            return None
        conn_id, db_type, sql, at_rows = target
        count = count_rows(db_type, source_params(conn_id), sql, at_rows)
        if count > 0:  # counted before deferring: the trigger's first count comes one interval later
            return self.execute_complete(context, {"status": "changes", "count": count})
        self.log.info("%s: waiting up to %s for changes: %s", self.control_key, self.max_wait, sql)
        self.defer(
            trigger=SourceChangesTrigger(
                conn_id=conn_id,
                db_type=db_type,
                count_sql=sql,
                deadline=(datetime.now(UTC) + self.max_wait).isoformat(),
                poll_interval=self.poll_interval,
                watermark_rows=at_rows,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict) -> int:
        if event["status"] == "changes":
            self.log.info("%s: %s changes past the watermark", self.control_key, event["count"])
            return event["count"]
        raise AirflowSkipException(f"{self.control_key}: no changes past the watermark within {self.max_wait}")

    def poke(self, context) -> bool:
        target = self.count_sql()
        if target is None:
            return True
        conn_id, db_type, sql, at_rows = target
        return count_rows(db_type, source_params(conn_id), sql, at_rows) > 0
