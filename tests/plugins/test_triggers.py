"""The source-change trigger: its serialisation, and its run against a real PostgreSQL source through the
project's own driver (psycopg), from the Airflow connection alone."""

import asyncio
from datetime import UTC, datetime, timedelta

from dataplatform.triggers.source_changes import SourceChangesTrigger
from include.dataloader.dialects import dialect_for
from include.dataloader.queries import Cursor, SourceQueries
from tests.conftest import airflow_conn_json

COUNT = 'SELECT COUNT(*) AS changes FROM "public"."orders" WHERE "id" > 2'


def trigger(deadline: datetime, count_sql: str = COUNT, watermark_rows: int | None = None) -> SourceChangesTrigger:
    return SourceChangesTrigger(
        conn_id="test_source",
        db_type="postgresql",
        count_sql=count_sql,
        deadline=deadline.isoformat(),
        poll_interval=0.2,
        watermark_rows=watermark_rows,
    )


def test_serialize_mirrors_the_constructor():
    deadline = datetime(2024, 1, 1, tzinfo=UTC)
    assert trigger(deadline, watermark_rows=3).serialize() == (
        "dataplatform.triggers.source_changes.SourceChangesTrigger",
        {
            "conn_id": "test_source",
            "db_type": "postgresql",
            "count_sql": COUNT,
            "deadline": "2024-01-01T00:00:00+00:00",
            "poll_interval": 0.2,
            "watermark_rows": 3,
        },
    )


def first_event(t: SourceChangesTrigger):
    async def run():
        async for event in t.run():
            return event.payload

    return asyncio.run(run())


def test_fires_once_rows_arrive_and_times_out_otherwise(source_url, source_sql, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TEST_SOURCE", airflow_conn_json(source_url))
    source_sql("CREATE TABLE orders (id int)")
    source_sql("INSERT INTO orders VALUES (1), (2)")

    assert first_event(trigger(datetime.now(UTC) + timedelta(seconds=1))) == {"status": "timeout"}

    source_sql("INSERT INTO orders VALUES (3), (4)")
    assert first_event(trigger(datetime.now(UTC) + timedelta(seconds=30))) == {"status": "changes", "count": 2}


def test_a_row_committed_later_at_the_watermark_fires_as_the_load_would_read_it(source_url, source_sql, monkeypatch):
    """The target had 1 row at the watermark (2): a second source row at 2 is a change; none is not."""
    monkeypatch.setenv("AIRFLOW_CONN_TEST_SOURCE", airflow_conn_json(source_url))
    source_sql("CREATE TABLE orders (id int, version int)")
    source_sql("INSERT INTO orders VALUES (1, 1), (2, 2)")
    queries = SourceQueries(dialect_for("postgresql"), "public", "orders")
    count_sql = queries.change_count(Cursor("version", "integer"), "2", at_watermark=True)

    def soon():
        return datetime.now(UTC) + timedelta(seconds=1)

    assert first_event(trigger(soon(), count_sql, watermark_rows=1)) == {"status": "timeout"}

    source_sql("INSERT INTO orders VALUES (3, 2)")  # late, at exactly the watermark's value
    assert first_event(trigger(soon(), count_sql, watermark_rows=1)) == {"status": "changes", "count": 1}
    # without the target's count, only rows past the watermark count: as before
    assert first_event(trigger(soon(), count_sql)) == {"status": "timeout"}

    source_sql("INSERT INTO orders VALUES (4, 3)")
    assert first_event(trigger(soon(), count_sql, watermark_rows=1)) == {"status": "changes", "count": 2}


def test_the_first_count_comes_one_interval_after_the_trigger_starts(source_url, source_sql, monkeypatch):
    """The task counted just before deferring; counting again at once would fire within a second of the
    deferral, which Airflow 3.3's scheduler can take for a dead try (apache/airflow#72716)."""
    from dataplatform.triggers import source_changes

    monkeypatch.setenv("AIRFLOW_CONN_TEST_SOURCE", airflow_conn_json(source_url))
    source_sql("CREATE TABLE orders (id int)")
    source_sql("INSERT INTO orders VALUES (3)")
    counts, slept, real_sleep = [], [], asyncio.sleep
    count_rows = source_changes.count_rows

    def counting(*args):
        counts.append(args)
        return count_rows(*args)

    async def sleep(seconds):
        slept.append((seconds, len(counts)))
        await real_sleep(0)

    monkeypatch.setattr(source_changes, "count_rows", counting)
    monkeypatch.setattr(asyncio, "sleep", sleep)

    assert first_event(trigger(datetime.now(UTC) + timedelta(seconds=30))) == {"status": "changes", "count": 1}
    assert slept == [(0.2, 0)] and len(counts) == 1  # one interval's wait before the first count


def test_the_sensors_count_before_deferring(repo, control_connection, source_url, source_sql, monkeypatch):
    import pytest
    from airflow.sdk.exceptions import TaskDeferred

    from dataplatform.sensors.source_changes import SourceChangesSensor
    from dataplatform.sensors.sql_condition import SqlConditionSensor
    from tests.control.helpers import add

    monkeypatch.setenv("AIRFLOW_CONN_SALES_PG", airflow_conn_json(source_url))
    monkeypatch.setenv("AIRFLOW_CONN_TEST_SOURCE", airflow_conn_json(source_url))
    source_sql("CREATE TABLE orders (order_id int, updated_at timestamp)")
    source_sql("INSERT INTO orders VALUES (1, '2024-01-01')")
    add(repo, load_strategy="check_and_load", incremental_value="2024-01-01 00:00:00")
    changes = SourceChangesSensor(task_id="wait_for_changes", control_key="sales.orders")
    caught_up = SqlConditionSensor(
        task_id="dr_caught_up",
        conn_id="test_source",
        db_type="postgresql",
        sql='SELECT count(*) FROM "public"."orders" WHERE "order_id" > 2',
        max_wait=timedelta(minutes=5),
    )

    with pytest.raises(TaskDeferred) as waiting:  # nothing past the watermark yet
        changes.execute({})
    assert waiting.value.trigger.poll_interval == 60.0
    with pytest.raises(TaskDeferred):
        caught_up.execute({})

    source_sql("INSERT INTO orders VALUES (3, '2024-01-02')")
    assert changes.execute({}) == 1  # at once: no deferral, no trigger
    assert caught_up.execute({}) == 1
