"""Resolving a ``table_control_dbconfig`` row into connection parameters, outside Airflow.

``db_config_value`` holds secret *names*; ``db_kv_scope`` says where to look them up:

- ``env``: environment variables of those names (local runs, tests, the demo);
- any other scope: a Databricks secret scope (``dbutils.secrets.get(scope, name)``), e.g. one backed by
  Azure Key Vault.

A ``url`` entry may stand for host, port, database, user and password together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from include.dataloader.dialects import ConnectionParams

SecretLookup = Callable[[str, str], str]  # (scope, secret name) -> value
_FIELDS = ("host", "port", "database", "user", "password", "url")


class SecretNotFound(LookupError):
    pass


def env_secrets(scope: str, name: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise SecretNotFound(f"secret {name!r} (scope {scope!r}): set the environment variable {name}") from None


def databricks_secrets(scope: str, name: str) -> str:
    from pyspark.dbutils import DBUtils  # only on a Databricks cluster
    from pyspark.sql import SparkSession

    return DBUtils(SparkSession.getActiveSession()).secrets.get(scope=scope, key=name)


def secret_lookup_for(scope: str | None) -> SecretLookup:
    return env_secrets if scope in (None, "", "env") else databricks_secrets


def resolve(dbconfig: Mapping[str, Any], lookup: SecretLookup | None = None) -> ConnectionParams:
    """Connection parameters for a dbconfig row; every named secret is looked up, nothing is logged."""
    key, scope = dbconfig["db_config_key"], dbconfig.get("db_kv_scope") or "env"
    lookup = lookup or secret_lookup_for(scope)
    names: Mapping[str, str] = dbconfig.get("db_config_value") or {}
    values: dict[str, Any] = {}
    options: dict[str, str] = {}
    for field, secret_name in names.items():
        try:
            value = lookup(scope, secret_name)
        except SecretNotFound as exc:
            raise SecretNotFound(f"dbconfig {key!r}, field {field!r}: {exc}") from None
        if field in _FIELDS:
            values[field] = value
        else:
            options[field] = value
    if "port" in values:
        values["port"] = int(values["port"])
    return ConnectionParams(**values, options=options)
