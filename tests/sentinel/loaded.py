"""Source tables loaded into Delta by the loader itself (a full load on the local engine), for the
cross-engine tests: the bronze table is exactly what the loader writes."""

from __future__ import annotations

from datetime import UTC, datetime

from include.control.model import ControlRow
from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.readers import local_reader
from include.dataloader.source import SourceTable
from include.dataloader.strategies import STRATEGIES
from include.dataloader.strategies.base import LoadContext
from include.dataloader.target import LocalWarehouse


def load_full(spark, warehouse_root, source_url: str, table: str) -> str:
    """Load ``public.<table>`` of the source with the full strategy; the Delta folder's path."""
    row = ControlRow.from_mapping(
        {
            "control_key": f"test.{table}",
            "db_config_key": "test_source",
            "source_schema": "public",
            "source_table_name": table,
            "destination_schema": "test",
            "destination_table_name": table,
            "load_strategy": "full",
            "cron": "@daily",
        }
    )
    warehouse = LocalWarehouse(spark, warehouse_root)
    dialect = dialect_for("postgresql")
    reader = local_reader(spark, dialect, ConnectionParams(url=source_url), warehouse.extract_staging())
    context = LoadContext(SourceTable(row, dialect, reader), warehouse, now=datetime(2024, 1, 10, tzinfo=UTC))
    try:
        STRATEGIES["full"](context, None)
    finally:
        reader.close()
    return str(warehouse.path(context.target))
