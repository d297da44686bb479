"""Where a load runs: the local engine (Sail + a warehouse folder) or Databricks (Unity Catalog + JDBC)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from include.control.model import ControlRow
from include.dataloader.connections import SecretLookup, resolve
from include.dataloader.dialects import ConnectionParams, SourceDialect, dialect_for
from include.dataloader.readers import SourceReader, SparkSourceReader, local_reader
from include.dataloader.source import SourceTable
from include.dataloader.strategies.base import LoadContext
from include.dataloader.target import LocalWarehouse, UnityCatalog, Warehouse

WAREHOUSE_ENV = "DATALOADER_WAREHOUSE"


@dataclass
class Engine:
    spark: SparkSession
    warehouse: Warehouse
    reader_for: Callable[[SourceDialect, ConnectionParams], SourceReader]
    secret_lookup: SecretLookup | None = None  # None: by each dbconfig's scope

    def context(
        self, row: ControlRow, dbconfig: Mapping[str, Any], params: ConnectionParams | None = None
    ) -> LoadContext:
        """``params``: the source's connection when the caller resolved it (Airflow: its connection);
        otherwise the dbconfig's secret names are looked up (Databricks secret scope, or ``env``)."""
        dialect = dialect_for(dbconfig["db_type"])
        params = params or resolve(dbconfig, self.secret_lookup)
        return LoadContext(SourceTable(row, dialect, self.reader_for(dialect, params)), self.warehouse)

    @contextmanager
    def load_context(
        self, row: ControlRow, dbconfig: Mapping[str, Any], params: ConnectionParams | None = None
    ) -> Iterator[LoadContext]:
        """A load's context; when the load ends (committed or failed) its reader's staged files go."""
        ctx = self.context(row, dbconfig, params)
        try:
            yield ctx
        finally:
            close = getattr(ctx.source.reader, "close", None)
            if close is not None:
                close()


def default_warehouse_root() -> Path:
    """``$DATALOADER_WAREHOUSE``; else, under Airflow, ``$AIRFLOW_HOME/dataloader/warehouse`` (beside the
    snapshot: the same folder for every task, whatever a worker's working directory); else ``.local/warehouse``."""
    if explicit := os.environ.get(WAREHOUSE_ENV):
        return Path(explicit).resolve()
    if home := os.environ.get("AIRFLOW_HOME"):
        return Path(home, "dataloader", "warehouse").resolve()
    return Path(".local/warehouse").resolve()


def local_engine(warehouse_root: Path | None = None) -> Engine:
    from include.local import spark as local_spark

    spark = local_spark.session()
    warehouse = LocalWarehouse(spark, warehouse_root or default_warehouse_root())
    return Engine(
        spark=spark,
        warehouse=warehouse,
        # each load stages its extracted rows in a folder of its own (ExtractStaging), removed afterwards
        reader_for=lambda dialect, params: local_reader(spark, dialect, params, warehouse.extract_staging()),
    )


def databricks_engine() -> Engine:
    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return Engine(
        spark=spark,
        warehouse=UnityCatalog(spark),
        reader_for=lambda dialect, params: SparkSourceReader(spark, dialect, params),
    )


ENGINES: dict[str, Callable[[], Engine]] = {"local": local_engine, "databricks": databricks_engine}
