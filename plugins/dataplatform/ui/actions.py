"""What an operator may do from the page, each one guarded transition of ``include/control`` (or a run
through Airflow's REST API), with the validation and messages of the ``dataloader`` command.

Every change goes through a repository whose ``change_source`` is ``ui:<user>``: the history trigger
records it in ``table_control_history`` with the user's name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from include.control.model import CONFIG_FIELDS, ControlRow, parse_fields
from include.control.repository import ControlRepository
from include.dataloader import operations
from include.dataloader.monitors.rest import AirflowRest
from include.dataloader.operations import IN_FLIGHT, Refused
from include.redact import describe

REDACTED = "***"


def repository(url: str, user: str) -> ControlRepository:
    return ControlRepository(url, change_source=f"ui:{user}")


def who(user: str) -> str:
    return f"{user} (Airflow UI)"


def field_text(value: Any) -> str:
    """A stored value as the form shows it (and as ``parse_field`` reads it back)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(value)
    return str(value)


def add_row(url: str, user: str, form: Mapping[str, str]) -> str:
    raw = {n: form[n] for n in CONFIG_FIELDS if (form.get(n) or "").strip()}
    fields = parse_fields(raw.get("control_key"), raw)
    row = repository(url, user).add(ControlRow.from_mapping(fields))
    return f"added {row['control_key']} ({row['load_strategy']}, next load {row['next_load_date_time']})"


def edit_row(url: str, user: str, control_key: str, form: Mapping[str, str]) -> str:
    """Only the fields whose text differs from the stored value are changed; the merged row is validated
    as a whole, in one transaction (``dataloader tables update``)."""
    repo = repository(url, user)
    current = repo.require(control_key)
    raw = {
        n: form[n]
        for n in CONFIG_FIELDS
        if n != "control_key" and n in form and form[n].strip() != field_text(current[n])
    }
    if not raw:
        return f"{control_key}: nothing changed"
    repo.update(control_key, parse_fields(control_key, raw))
    return f"updated {control_key}: {', '.join(sorted(raw))}"


def deactivate(url: str, user: str, control_key: str) -> str:
    repository(url, user).deactivate(control_key)
    return f"deactivated {control_key}"


def reset(url: str, user: str, control_key: str) -> str:
    return operations.reset(repository(url, user), control_key, who(user))


def save_dbconfig(url: str, user: str, form: Mapping[str, str]) -> str:
    """``dataloader dbconfig add``: a value of ``***`` keeps the stored value of that name (the page never
    shows a secret, so an edit sends back the redacted mask)."""
    key = (form.get("db_config_key") or "").strip()
    if not key:
        raise Refused("dbconfig: db_config_key is empty; name the source database config")
    try:
        value = json.loads(form.get("db_config_value") or "{}")
    except json.JSONDecodeError as exc:
        raise Refused(
            f"dbconfig {key}: --value is not JSON ({exc.msg}); "
            'write an object of secret names, e.g. \'{"host": "kv-host"}\''
        ) from None
    if not isinstance(value, dict):
        raise Refused(f'dbconfig {key}: the value must be a JSON object of secret names, e.g. {{"host": "kv-host"}}')
    repo = repository(url, user)
    stored = (repo.get_dbconfig(key) or {}).get("db_config_value") or {}
    value = {k: stored.get(k) if v == REDACTED and k in stored else v for k, v in value.items()}
    row = repo.upsert_dbconfig(key, (form.get("db_type") or "").strip(), value, (form.get("db_kv_scope") or None))
    return f"dbconfig {row['db_config_key']} ({row['db_type']}) saved"


def trigger(url: str, control_key: str, airflow: AirflowRest) -> str:
    """A run of the row's DAG through Airflow's REST API, as the caller (Airflow checks their right to)."""
    current = repository(url, "-").require(control_key)
    if not current["is_active"]:
        raise Refused(
            f"{control_key}: is_active is false, so it is not loaded; switch it on (edit the row: is_active=true)"
        )
    if current["last_status"] in IN_FLIGHT:
        raise Refused(
            f"{control_key}: last_status is {current['last_status']} for run {current['current_run_id']}; "
            "wait for that run, or cancel it first"
        )
    try:
        run_id = airflow.trigger(control_key, {})
    except httpx.HTTPStatusError as exc:
        detail = exc.response.text[:300]
        raise Refused(f"{control_key}: Airflow refused the run ({exc.response.status_code}): {detail}") from None
    except httpx.HTTPError as exc:
        raise Refused(f"{control_key}: Airflow's API could not be reached: {describe(exc)}") from None
    return f"triggered {control_key}: Airflow run {run_id}"
