"""The source-change trigger: its serialisation, and its run against a real PostgreSQL source through the
project's own driver (psycopg), from the Airflow connection alone."""

import asyncio
from datetime import UTC, datetime, timedelta

from dataplatform.triggers.source_changes import SourceChangesTrigger
from tests.conftest import airflow_conn_json

COUNT = 'SELECT COUNT(*) AS changes FROM "public"."orders" WHERE "id" > 2'


def trigger(deadline: datetime) -> SourceChangesTrigger:
    return SourceChangesTrigger(
        conn_id="test_source",
        db_type="postgresql",
        count_sql=COUNT,
        deadline=deadline.isoformat(),
        poll_interval=0.2,
    )


def test_serialize_mirrors_the_constructor():
    deadline = datetime(2024, 1, 1, tzinfo=UTC)
    assert trigger(deadline).serialize() == (
        "dataplatform.triggers.source_changes.SourceChangesTrigger",
        {
            "conn_id": "test_source",
            "db_type": "postgresql",
            "count_sql": COUNT,
            "deadline": "2024-01-01T00:00:00+00:00",
            "poll_interval": 0.2,
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
