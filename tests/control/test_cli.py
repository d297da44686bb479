"""The `dataloader` command against a real control database."""

import pytest

from include.control import migrate
from include.dataloader.cli import main

DBCONFIG = """
dbconfigs:
  - db_config_key: sales_pg
    db_type: postgresql
    db_config_value: {host: kv-sales-host, password: kv-sales-password}
    db_kv_scope: azure-keyvault
"""

ORDERS = """
  - control_key: sales.orders
    db_config_key: sales_pg
    source_table_name: orders
    destination_schema: sales
    destination_table_name: orders
    load_strategy: incremental
    cron: "0 * * * *"
    incremental_column: updated_at
    incremental_type: timestamp
    primary_key_columns: [order_id]
"""

EVENTS = """
  - control_key: sales.events
    db_config_key: sales_pg
    source_table_name: events
    destination_schema: sales
    destination_table_name: events
    load_strategy: full
    cron: "@daily"
"""


@pytest.fixture
def cli(control_url, capsys):
    def run(*argv):
        code = main(["--db-url", control_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def write(tmp_path):
    def write(*parts):
        path = tmp_path / "tables.yaml"
        path.write_text(DBCONFIG + "tables:" + "".join(parts))
        return path

    return write


def test_import_then_list_and_show(cli, write):
    code, out, _ = cli("tables", "import", str(write(ORDERS, EVENTS)))
    assert (code, out.strip()) == (0, f"imported {write(ORDERS, EVENTS)}: 2 added, 0 updated")

    code, out, _ = cli("tables", "list")
    lines = out.splitlines()
    assert lines[0].split() == [
        "control_key",
        "db_type",
        "load_strategy",
        "cron",
        "is_active",
        "last_status",
        "incremental_value",
    ]
    assert [line.split()[0] for line in lines[2:]] == ["sales.events", "sales.orders"]

    code, out, _ = cli("tables", "show", "sales.orders")
    assert code == 0
    assert "load_strategy" in out and "incremental" in out


def test_reimporting_updates_instead_of_duplicating(cli, write, repo):
    cli("tables", "import", str(write(ORDERS)))
    code, out, _ = cli("tables", "import", str(write(ORDERS.replace('"0 * * * *"', '"*/5 * * * *"'), EVENTS)))
    assert code == 0 and "1 added, 1 updated" in out
    assert repo.get("sales.orders")["cron"] == "*/5 * * * *"


@pytest.mark.parametrize(
    ("line", "replacement", "expected"),
    [
        (
            "load_strategy: incremental",
            "load_strategy: upsert",
            "load_strategy: 'upsert' is not a load strategy",
        ),
        ('cron: "0 * * * *"', 'cron: "every day"', "cron: 'every day' is not a valid cron expression"),
        ("incremental_type: timestamp", "", "incremental_type: is required with incremental_column"),
        (
            "primary_key_columns: [order_id]",
            "",
            "primary_key_columns: is required by load_strategy 'incremental'",
        ),
        (
            "db_config_key: sales_pg",
            "db_config_key: nope",
            "db_config_key: 'nope' is not in table_control_dbconfig",
        ),
    ],
)
def test_a_bad_row_imports_nothing_and_names_key_field_and_fix(cli, write, repo, line, replacement, expected):
    broken = ORDERS.replace(f"    {line}", f"    {replacement}")
    code, _, err = cli("tables", "import", str(write(EVENTS, broken)))

    assert code == 2
    assert f"'sales.orders' is invalid:\n  - {expected}" in err
    assert repo.list() == []  # sales.events was valid, and still nothing was written


def test_a_duplicate_key_in_the_file_is_refused(cli, write, repo):
    code, _, err = cli("tables", "import", str(write(ORDERS, ORDERS)))
    assert code == 2
    assert "'sales.orders' is invalid:\n  - control_key: appears twice in the file" in err
    assert repo.list() == []


def test_add_refuses_a_duplicate_control_key(cli, write):
    cli("tables", "import", str(write(ORDERS)))
    args = [
        "tables",
        "add",
        "--control-key",
        "sales.orders",
        "--db-config-key",
        "sales_pg",
        "--source-table-name",
        "orders",
        "--destination-schema",
        "sales",
        "--destination-table-name",
        "orders2",
        "--load-strategy",
        "full",
        "--cron",
        "@daily",
    ]
    code, _, err = cli(*args)
    assert code == 2
    assert "'sales.orders' is invalid:\n  - control_key: already exists; choose another key" in err


def test_add_update_and_deactivate(cli, write, repo):
    cli("tables", "import", str(write(EVENTS)))
    code, out, _ = cli(
        "tables",
        "add",
        "--control-key",
        "sales.lines",
        "--db-config-key",
        "sales_pg",
        "--source-table-name",
        "order_lines",
        "--destination-schema",
        "sales",
        "--destination-table-name",
        "order_lines",
        "--load-strategy",
        "chunked_backfill",
        "--cron",
        "0 3 * * *",
        "--incremental-column",
        "line_id",
        "--incremental-type",
        "integer",
        "--primary-key-columns",
        "order_id,line_id",
        "--chunk-size",
        "50000",
    )
    assert code == 0, out
    row = repo.get("sales.lines")
    assert (row["primary_key_columns"], row["chunk_size"]) == (["order_id", "line_id"], 50000)

    code, out, _ = cli("tables", "update", "sales.lines", "--set", "chunk_size=25000", "--set", "sla_minutes=90")
    assert code == 0, out
    assert (repo.get("sales.lines")["chunk_size"], repo.get("sales.lines")["sla_minutes"]) == (25000, 90)

    code, _, err = cli("tables", "update", "sales.lines", "--set", "load_strategy=rolling")
    assert code == 2
    assert "rolling_column: is required by load_strategy 'rolling'" in err
    assert repo.get("sales.lines")["load_strategy"] == "chunked_backfill"

    assert cli("tables", "deactivate", "sales.lines")[0] == 0
    assert repo.get("sales.lines")["is_active"] is False


def test_unknown_table_and_missing_database_say_what_to_do(cli, capsys, monkeypatch):
    code, _, err = cli("tables", "show", "nope")
    assert code == 2 and "no table_control row with control_key 'nope'" in err

    monkeypatch.delenv("DATALOADER_CONTROL_DB_URL", raising=False)
    assert main(["tables", "list"]) == 2
    assert "set DATALOADER_CONTROL_DB_URL" in capsys.readouterr().err


def test_dbconfig_and_db_commands(cli):
    code, out, _ = cli("dbconfig", "add", "ora_prod", "--db-type", "oracle", "--value", '{"host": "kv-ora-host"}')
    assert code == 0 and "ora_prod (oracle) saved" in out
    assert "kv-ora-host" in cli("dbconfig", "list")[1]
    assert cli("db", "current")[1].strip() == migrate.head_revision() == "0005"
