"""The ``verify`` task: after a load, compare the source with its bronze table in the strategy's terms.

The comparison is :func:`include.dataloader.verification.run_verification` (the same as
``dataloader verify``); this operator only supplies the source's Airflow connection (the load's own
credential path), the bronze table's reader (Sail on the local engine, Databricks SQL on Databricks) and
the run. A re-run (cleared, retried) compares again and overwrites its run's result: it writes nothing
but its report and the run's ``verify_*`` columns in ``historical_metadata``.

A difference fails the task without retries (the data will not change by retrying) and the DAG's
failure callback pages the row's alert target with the message, which carries the counts.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from dataplatform.hooks.control import ControlDatabaseHook
from dataplatform.hooks.source import source_params
from dataplatform.operators.load import run_change_source
from include.control.model import ControlRow
from include.control.repository import ControlRepository

if TYPE_CHECKING:
    from include.dataloader.verification import Bronze


def databricks_bronze(row: ControlRow, *, databricks_conn_id: str, http_path: str | None) -> Bronze:
    """The bronze table in Unity Catalog, read through a Databricks SQL warehouse (the provider's SQL
    hook); the table is named ``catalog.schema.table``."""

    def connect() -> Any:
        from airflow.providers.databricks.hooks.databricks_sql import DatabricksSqlHook

        from include.sentinel.spark import DatabricksConnection  # the comparator's binds as native parameters

        return DatabricksConnection(DatabricksSqlHook(databricks_conn_id, http_path=http_path).get_conn())

    from include.dataloader.verification import Bronze

    schema = f"{row.destination_catalog}.{row.destination_schema}"  # a dotted schema: catalog and schema
    return Bronze(connect, schema, row.destination_table_name, "databricks")


class VerifyLoadOperator(BaseOperator):
    """Verify the load of this DAG run: the source against the bronze table, recorded on the run.

    :param control_key: the control row.
    :param strategy: the terms to verify in (default: the row's strategy; a chunked backfill's finalize
        switches the row to incremental, so its DAG passes ``chunked_backfill``).
    :param target: ``local`` (Sail on the local warehouse) or ``databricks`` (Databricks SQL).
    :param databricks_conn_id: the Databricks connection (``target="databricks"``).
    :param databricks_sql_http_path: the SQL warehouse's HTTP path (default: the connection's extra).
    :param control_conn_id: the control database connection.
    """

    template_fields = ("control_key",)
    ui_color = "#e9f7ef"

    def __init__(
        self,
        *,
        control_key: str,
        strategy: str | None = None,
        target: str = "local",
        databricks_conn_id: str = "databricks_default",
        databricks_sql_http_path: str | None = None,
        control_conn_id: str = "dataloader_control",
        **kwargs,
    ):
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        if target not in ("local", "databricks"):
            raise ValueError(f"{control_key}: verify target {target!r} is not local or databricks")
        self.control_key = control_key
        self.strategy = strategy
        self.target = target
        self.databricks_conn_id = databricks_conn_id
        self.databricks_sql_http_path = databricks_sql_http_path
        self.control_conn_id = control_conn_id

    @cached_property
    def repo(self) -> ControlRepository:
        return ControlDatabaseHook(self.control_conn_id).repository(change_source="airflow")

    def bronze(self, row: ControlRow) -> Bronze:
        if self.target == "databricks":
            return databricks_bronze(
                row, databricks_conn_id=self.databricks_conn_id, http_path=self.databricks_sql_http_path
            )
        from include.dataloader.engine import default_warehouse_root
        from include.dataloader.verification import local_bronze

        return local_bronze(row, default_warehouse_root())

    def execute(self, context) -> dict[str, Any]:
        # imported when the task runs: a DAG file's parse does not load the comparator (or Spark)
        from include.dataloader.engine import default_warehouse_root
        from include.dataloader.verification import default_artifacts_root, run_verification

        self.repo.change_source = run_change_source(context)
        result = run_verification(
            self.repo,
            self.control_key,
            params=lambda dbconfig: source_params(dbconfig["db_config_key"]),  # the load's credential path
            bronze=self.bronze,
            artifacts_root=default_artifacts_root(default_warehouse_root()),
            run_id=context["run_id"],
            strategy=self.strategy,
        )
        summary = result.as_dict()
        self.log.info("%s", result.message())
        if result.failures:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise AirflowFailException(result.message())
        return summary
