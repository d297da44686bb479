"""Fixtures for loads against a real PostgreSQL source and real Delta tables on Sail."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from include.control.model import ControlRow
from include.dataloader.dialects import ConnectionParams, dialect_for
from include.dataloader.readers import local_reader
from include.dataloader.source import SourceTable
from include.dataloader.strategies import STRATEGIES
from include.dataloader.strategies.base import LoadContext, LoadSummary
from include.dataloader.target import LocalWarehouse, TableName

FIXED_NOW = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(spark, tmp_path) -> LocalWarehouse:
    return LocalWarehouse(spark, tmp_path / "warehouse")


def control_row(table: str, strategy: str, **fields: Any) -> ControlRow:
    return ControlRow.from_mapping(
        {
            "control_key": f"test.{table}",
            "db_config_key": "test_source",
            "source_schema": "public",
            "source_table_name": table,
            "destination_schema": "test",
            "destination_table_name": table,
            "load_strategy": strategy,
            "cron": "@daily",
            **fields,
        }
    )


class Loads:
    """Runs a strategy for a control row and reads the target back, as a test would look at it."""

    def __init__(self, spark, warehouse: LocalWarehouse, source_url: str):
        self.spark = spark
        self.warehouse = warehouse
        self.source_url = source_url

    def context(self, row: ControlRow, now: datetime = FIXED_NOW) -> LoadContext:
        # every read streams through staged Parquet files, in batches of 2 rows, 3 rows a file
        dialect = dialect_for("postgresql")
        params = ConnectionParams(url=self.source_url)
        staging = self.warehouse.extract_staging()
        reader = local_reader(self.spark, dialect, params, staging, batch_rows=2, inline_bytes=0, file_rows=3)
        return LoadContext(SourceTable(row, dialect, reader), self.warehouse, now=now)

    def run(self, row: ControlRow, watermark: str | None = None, now: datetime = FIXED_NOW) -> LoadSummary:
        # a fresh context per run, as each Airflow task has: the source's columns are read anew
        ctx = self.context(row, now)
        try:
            return STRATEGIES[row.load_strategy](ctx, watermark)
        finally:
            ctx.source.reader.close()

    def rows(self, row: ControlRow, *columns: str) -> list[tuple]:
        df = self.warehouse.read(self.context(row).target)
        columns = columns or tuple(df.columns)
        return sorted((tuple(r) for r in df.select(*columns).collect()), key=_nulls_first)

    def schema(self, row: ControlRow) -> dict[str, str]:
        df = self.warehouse.read(self.context(row).target)
        return {f.name: f.dataType.simpleString() for f in df.schema.fields}

    def version(self, row: ControlRow) -> int:
        log = self.warehouse.path(self.context(row).target) / "_delta_log"
        return max(int(p.stem) for p in log.glob("*.json"))


@pytest.fixture
def loads(spark, warehouse, source_url) -> Loads:
    return Loads(spark, warehouse, source_url)


def _nulls_first(values: tuple) -> tuple:
    return tuple((v is not None, v) for v in values)


class CliLoads:
    """Loads driven exactly as a user drives them: ``dataloader run KEY``, lifecycle recorded."""

    def __init__(self, repo, spark, warehouse_root, capsys):
        self.repo = repo
        self.warehouse = LocalWarehouse(spark, warehouse_root)
        self.capsys = capsys

    def add(self, table: str, strategy: str, **fields: Any) -> str:
        return self.repo.add(control_row(table, strategy, **fields))["control_key"]

    def run(self, key: str) -> dict[str, Any]:
        from include.dataloader.cli import main

        self.capsys.readouterr()
        status = main(["run", key])
        out, err = self.capsys.readouterr()
        assert status == 0, err
        return json.loads(out)

    def target(self, key: str) -> TableName:
        row = self.repo.get(key)
        return TableName(row["destination_catalog"], row["destination_schema"], row["destination_table_name"])

    def rows(self, key: str, *columns: str) -> list[tuple]:
        df = self.warehouse.read(self.target(key))
        return sorted((tuple(r) for r in df.select(*(columns or df.columns)).collect()), key=_nulls_first)

    def version(self, key: str) -> int:
        log = self.warehouse.path(self.target(key)) / "_delta_log"
        return max(int(p.stem) for p in log.glob("*.json"))


@pytest.fixture
def cli(repo, spark, control_url, source_url, tmp_path, monkeypatch, capsys) -> CliLoads:
    """``dataloader run`` against the test's control database, a PostgreSQL source and a local warehouse."""
    monkeypatch.setenv("TEST_SOURCE_URL", source_url)
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_url)
    monkeypatch.setenv("DATALOADER_WAREHOUSE", str(tmp_path / "warehouse"))
    repo.upsert_dbconfig("test_source", "postgresql", {"url": "TEST_SOURCE_URL"}, "env")
    return CliLoads(repo, spark, tmp_path / "warehouse", capsys)
