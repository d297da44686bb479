"""The control database as an Airflow connection."""

from __future__ import annotations

from airflow.sdk import BaseHook
from psycopg.conninfo import make_conninfo

from include.control.repository import ControlRepository


def postgres_conninfo(conn) -> str:
    """A libpq conninfo for an Airflow postgres connection; ``extra`` may add libpq options."""
    options = {k: v for k, v in conn.extra_dejson.items() if isinstance(v, str | int)}
    return make_conninfo(
        "",
        host=conn.host or None,
        port=conn.port or None,
        dbname=conn.schema or None,
        user=conn.login or None,
        password=conn.password or None,
        **options,
    )


class ControlDatabaseHook(BaseHook):
    """The DataLoader control database (PostgreSQL; Lakebase in production).

    The connection's host may be a unix-socket folder; ``extra`` may carry libpq options such as
    ``{"sslmode": "require"}``.

    :param control_conn_id: the Airflow connection of the control database.
    """

    conn_name_attr = "control_conn_id"
    default_conn_name = "dataloader_control"
    conn_type = "postgres"
    hook_name = "DataLoader control database"

    def __init__(self, control_conn_id: str = default_conn_name):
        super().__init__()
        self.control_conn_id = control_conn_id

    def conninfo(self) -> str:
        return postgres_conninfo(self.get_connection(self.control_conn_id))

    def repository(self, change_source: str = "airflow") -> ControlRepository:
        return ControlRepository(self.conninfo(), change_source=change_source)
