"""Control-row validation, without a database."""

import pytest

from include.control.model import ControlRow, InvalidControlRow

BASE = {
    "control_key": "sales.orders",
    "db_config_key": "sales_pg",
    "source_table_name": "orders",
    "destination_schema": "sales",
    "destination_table_name": "orders",
    "load_strategy": "incremental",
    "cron": "0 * * * *",
    "incremental_column": "updated_at",
    "incremental_type": "timestamp",
    "primary_key_columns": ["order_id"],
}


def problems(**changes):
    fields = {**BASE, **changes}
    fields = {k: v for k, v in fields.items() if v is not ...}
    with pytest.raises(InvalidControlRow) as info:
        ControlRow.from_mapping(fields)
    assert info.value.control_key == fields.get("control_key")
    return {p.field: f"{p.problem}; {p.fix}" for p in info.value.problems}


def test_a_complete_row_is_accepted_and_normalised():
    row = ControlRow.from_mapping({**BASE, "primary_key_columns": "order_id, line_no", "rolling_days": "7"})
    assert row.primary_key_columns == ("order_id", "line_no")
    assert row.rolling_days == 7
    assert row.destination == "bronze.sales.orders"


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        (
            {"load_strategy": "increment"},
            "load_strategy",
            "'increment' is not a load strategy; set one of: full,",
        ),
        ({"cron": "every hour"}, "cron", "'every hour' is not a valid cron expression"),
        ({"cron": "61 * * * *"}, "cron", "use five fields"),
        (
            {"incremental_column": ..., "incremental_type": ...},
            "incremental_column",
            "required by load_strategy",
        ),
        ({"primary_key_columns": []}, "primary_key_columns", "required by load_strategy 'incremental'"),
        ({"incremental_type": "float"}, "incremental_type", "set one of: timestamp, date, integer"),
        ({"incremental_type": ...}, "incremental_type", "is required with incremental_column"),
        ({"incremental_value": "yesterday"}, "incremental_value", "'yesterday' is not a timestamp"),
        ({"destination_table_name": "my orders"}, "destination_table_name", "not a Unity Catalog name"),
        ({"control_key": "sales orders"}, "control_key", "not a valid key"),
        ({"chunk_size": 0}, "chunk_size", "not a positive whole number"),
        ({"is_active": "yes"}, "is_active", "set true or false"),
        ({"schedule": "@daily"}, "schedule", "is not a control-table field; remove it"),
        ({"db_config_key": None}, "db_config_key", "is missing; set db_config_key"),
    ],
)
def test_each_problem_names_the_field_and_the_fix(changes, field, says):
    found = problems(**changes)
    assert says in found[field]


def test_rolling_needs_a_window():
    found = problems(load_strategy="rolling", incremental_column=..., incremental_type=...)
    assert set(found) == {"rolling_column", "rolling_days"}


def test_every_problem_is_reported_at_once():
    found = problems(load_strategy="full", cron="nope", incremental_type="float", sla_minutes=-5)
    assert set(found) == {"cron", "incremental_type", "sla_minutes"}


def test_the_message_names_the_control_key():
    with pytest.raises(InvalidControlRow, match=r"'sales.orders' is invalid:\n  - cron: 'x' is not a valid"):
        ControlRow.from_mapping({**BASE, "cron": "x"})
