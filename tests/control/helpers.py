"""Builders for control rows used across the control tests."""

from __future__ import annotations

from typing import Any

import psycopg

from include.control.model import ControlRow
from include.control.repository import ControlRepository


def row(control_key: str = "sales.orders", **overrides: Any) -> ControlRow:
    fields: dict[str, Any] = {
        "control_key": control_key,
        "db_config_key": "sales_pg",
        "source_schema": "public",
        "source_table_name": "orders",
        "destination_schema": "sales",
        "destination_table_name": control_key.rsplit(".", 1)[-1].replace("-", "_"),
        "load_strategy": "incremental",
        "cron": "0 * * * *",
        "incremental_column": "updated_at",
        "incremental_type": "timestamp",
        "primary_key_columns": ["order_id"],
    }
    fields.update(overrides)
    return ControlRow.from_mapping(fields)


def add(repo: ControlRepository, control_key: str = "sales.orders", **overrides: Any) -> dict:
    if repo.get_dbconfig("sales_pg") is None:
        repo.upsert_dbconfig("sales_pg", "postgresql", {"host": "kv-sales-host", "password": "kv-sales-pw"})
    return repo.add(row(control_key, **overrides))


def execute(url: str, query: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def make_due(url: str, control_key: str) -> None:
    execute(
        url,
        "UPDATE table_control SET next_load_date_time = now() - interval '1 minute' WHERE control_key = %s",
        (control_key,),
    )
