"""The `dataloader` command against a real control database."""

import re

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
    assert f"'sales.orders' is invalid: {expected}" in err and err.count("\n") == 1
    assert repo.list() == []  # sales.events was valid, and still nothing was written


def test_a_duplicate_key_in_the_file_is_refused(cli, write, repo):
    code, _, err = cli("tables", "import", str(write(ORDERS, ORDERS)))
    assert code == 2
    assert "'sales.orders' is invalid: control_key: appears twice in the file" in err
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
    assert "'sales.orders' is invalid: control_key: already exists; choose another key" in err


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
    assert cli("db", "current")[1].strip() == migrate.head_revision() == "0008"


# -- values typed as on a shell -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "field", "stored"),
    [
        ("cron=*/15 * * * *", "cron", "*/15 * * * *"),
        ("cron=@daily", "cron", "@daily"),
        ("primary_key_columns=order_id,line_no", "primary_key_columns", ["order_id", "line_no"]),
        ('primary_key_columns=["order_id", "line_no"]', "primary_key_columns", ["order_id", "line_no"]),
        ("is_active=false", "is_active", False),
        ("sla_minutes=30", "sla_minutes", 30),
        ("alert_target=https://hooks.example/x?a=1&b=2", "alert_target", "https://hooks.example/x?a=1&b=2"),
        ("incremental_value=2024-01-15 10:30:00", "incremental_value", "2024-01-15 10:30:00"),
    ],
)
def test_set_parses_values_as_the_fields_type(cli, write, repo, assignment, field, stored):
    cli("tables", "import", str(write(ORDERS)))
    code, _out, err = cli("tables", "update", "sales.orders", "--set", assignment)
    assert (code, err) == (0, ""), err
    assert repo.get("sales.orders")[field] == stored


def test_an_empty_value_clears_an_optional_field(cli, write, repo):
    cli("tables", "import", str(write(ORDERS)))
    cli("tables", "update", "sales.orders", "--set", "sla_minutes=30")
    assert cli("tables", "update", "sales.orders", "--set", "sla_minutes=")[0] == 0
    assert repo.get("sales.orders")["sla_minutes"] is None


@pytest.mark.parametrize(
    ("assignment", "says"),
    [
        ("sla_minutes=half an hour", "sla_minutes: 'half an hour' is not a whole number; set sla_minutes to e.g. 30"),
        ("is_active=maybe", "is_active: 'maybe' is not true or false; set true or false"),
        ("primary_key_columns=[order_id", "primary_key_columns: '[order_id' is not a JSON list"),
        ("colour=blue", "colour: is not a control-table field; use one of: control_key,"),
        ("cron", "cron: --set 'cron' has no '='; write FIELD=VALUE"),
    ],
)
def test_set_refuses_a_value_of_the_wrong_type_naming_row_field_and_fix(cli, write, repo, assignment, says):
    cli("tables", "import", str(write(ORDERS)))
    code, _out, err = cli("tables", "update", "sales.orders", "--set", assignment)
    assert code == 2
    assert err.startswith(f"error: table_control row 'sales.orders' is invalid: {says}")
    assert "Traceback" not in err


ROLLING = [
    "tables",
    "add",
    "--control-key",
    "sales.daily",
    "--db-config-key",
    "sales_pg",
    "--source-table-name",
    "daily",
    "--destination-schema",
    "sales",
    "--destination-table-name",
    "daily",
    "--load-strategy",
    "rolling",
    "--cron",
    "*/15 * * * *",
    "--primary-key-columns",
    '["day", "shop"]',
    "--rolling-column",
    "day",
    "--rolling-days",
    "7",
]


@pytest.mark.parametrize(("flag", "stored"), [(["true"], True), ([], True), (["false"], False), (["no"], False)])
def test_add_takes_typed_flags(cli, write, repo, flag, stored):
    cli("tables", "import", str(write(EVENTS)))
    code, _out, err = cli(*ROLLING, "--rolling-delete-missing", *flag, "--is-active", "true")
    assert code == 0, err
    row = repo.get("sales.daily")
    assert (row["rolling_delete_missing"], row["primary_key_columns"], row["rolling_days"], row["cron"]) == (
        stored,
        ["day", "shop"],
        7,
        "*/15 * * * *",
    )
    assert row["is_active"] is True


def test_add_reports_every_mistyped_flag_at_once(cli, write, repo):
    cli("tables", "import", str(write(EVENTS)))
    code, _, err = cli(*ROLLING, "--rolling-delete-missing", "maybe", "--sla-minutes", "soon")
    assert code == 2
    assert err == (
        "error: table_control row 'sales.daily' is invalid: "
        "rolling_delete_missing: 'maybe' is not true or false; set true or false | "
        "sla_minutes: 'soon' is not a whole number; set sla_minutes to e.g. 30\n"
    )
    assert repo.get("sales.daily") is None


def test_add_help_describes_every_flag_and_what_each_strategy_needs(monkeypatch, capsys):
    from include.control.model import CONFIG_FIELDS, FIELD_HELP

    monkeypatch.setenv("COLUMNS", "400")  # help text not wrapped
    with pytest.raises(SystemExit):
        main(["tables", "add", "--help"])
    out = capsys.readouterr().out
    flags = {}  # flag -> its help text
    for entry in re.split(r"\n  (?=--)", out.split("options:", 1)[1].split("\n\n")[0]):
        flag, _, text = entry.strip().partition(" ")
        flags[flag] = " ".join(text.split())
    for name in CONFIG_FIELDS:
        assert FIELD_HELP[name] in flags[f"--{name.replace('_', '-')}"]
    assert "--rolling-delete-missing [true|false]" in out
    assert "--primary-key-columns COL[,COL...]" in out
    assert "--load-strategy {full,incremental,append_only,rolling,check_and_load,chunked_backfill}" in out
    summary = out[out.index("what each --load-strategy needs") :].splitlines()[1:7]
    assert [line.split(None, 1) for line in summary] == [
        ["full", "nothing more"],
        ["incremental", "--incremental-column, --incremental-type, --primary-key-columns"],
        ["append_only", "--incremental-column, --incremental-type"],
        ["rolling", "--primary-key-columns, --rolling-column, --rolling-days"],
        ["check_and_load", "--incremental-column, --incremental-type, --primary-key-columns"],
        ["chunked_backfill", "--incremental-column, --incremental-type, --primary-key-columns"],
    ]


# -- the exit contract ----------------------------------------------------------------------------


def test_an_unreachable_database_is_one_redacted_line_and_a_traceback_only_with_debug(capsys):
    url = "postgresql://loader:canary-hunter2@127.0.0.1:1/control"
    assert main(["--db-url", url, "tables", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: OperationalError: ") and err.endswith("(run again with --debug for the traceback)\n")
    assert "hunter2" not in err and "Traceback" not in err

    import psycopg

    with pytest.raises(psycopg.OperationalError):
        main(["--db-url", url, "tables", "list", "--debug"])


def test_bad_dbconfig_json_is_refused(cli):
    code, _, err = cli("dbconfig", "add", "ora", "--db-type", "oracle", "--value", "{host: x}")
    assert code == 2
    assert err.startswith("error: dbconfig ora: --value is not JSON (")
