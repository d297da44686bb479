import pytest

from include.dataloader.connections import SecretNotFound, resolve
from include.dataloader.naming import ColumnNameCollision, delta_column_name, delta_column_names
from include.dataloader.redact import describe, redact

DBCONFIG = {
    "db_config_key": "sales_mssql",
    "db_type": "sqlserver",
    "db_config_value": {
        "host": "KV_SALES_HOST",
        "port": "KV_SALES_PORT",
        "user": "KV_SALES_USER",
        "password": "KV_SALES_PASSWORD",
        "database": "KV_SALES_DB",
        "warehouse": "KV_WH",
    },
    "db_kv_scope": "env",
}


def test_env_scope_resolves_each_named_secret(monkeypatch):
    for name, value in {
        "KV_SALES_HOST": "db1",
        "KV_SALES_PORT": "1433",
        "KV_SALES_USER": "u",
        "KV_SALES_PASSWORD": "canary-p",
        "KV_SALES_DB": "sales",
        "KV_WH": "wh",
    }.items():
        monkeypatch.setenv(name, value)
    params = resolve(DBCONFIG)
    assert (params.host, params.port, params.user, params.password, params.database) == (
        "db1",
        1433,
        "u",
        "canary-p",
        "sales",
    )
    assert params.options == {"warehouse": "wh"}


def test_another_scope_asks_the_given_lookup():
    asked = []

    def vault(scope, name):
        asked.append((scope, name))
        return "1433" if name == "KV_SALES_PORT" else f"canary-value-of-{name}"

    params = resolve({**DBCONFIG, "db_kv_scope": "azure-keyvault"}, vault)
    assert {scope for scope, _ in asked} == {"azure-keyvault"}
    assert sorted(name for _, name in asked) == sorted(DBCONFIG["db_config_value"].values())
    assert (params.password, params.port) == ("canary-value-of-KV_SALES_PASSWORD", 1433)


def test_a_missing_secret_names_the_dbconfig_field_and_variable(monkeypatch):
    monkeypatch.delenv("KV_SALES_HOST", raising=False)
    with pytest.raises(
        SecretNotFound, match=r"dbconfig 'sales_mssql', field 'host': .*set the environment variable KV_SALES_HOST"
    ):
        resolve(DBCONFIG)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "connect failed: postgresql://loader:canary-hunter2@db:5432/x",
            "connect failed: postgresql://loader:***@db:5432/x",
        ),
        (
            "jdbc:sqlserver://h;user=u;password=canary-hunter2;encrypt=true",
            "jdbc:sqlserver://h;user=u;password=***;encrypt=true",
        ),
        ("options {'sfPassword': 'canary-hunter2'}", "options {'sfPassword': '***'}"),
        ("ORA-01017: invalid username/password; logon denied", "ORA-01017: invalid username/password; logon denied"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_describe_redacts_known_secrets_too():
    assert describe(RuntimeError("token canary-abc123 rejected"), "canary-abc123") == "RuntimeError: token *** rejected"


@pytest.mark.parametrize(
    ("source", "delta"),
    [
        ("Order ID", "Order_ID"),
        ("amount(usd)", "amount_usd"),
        ("1st_value", "_1st_value"),
        ("a;b=c", "a_b_c"),
        ("ok", "ok"),
        ("prénom", "prénom"),  # letters of every script are valid in Delta
        ("Straße", "Straße"),
        ("café au lait", "café_au_lait"),
        ("名前", "名前"),
    ],
)
def test_delta_column_names(source, delta):
    assert delta_column_name(source) == delta


def test_a_collision_names_both_source_columns():
    with pytest.raises(ColumnNameCollision, match=r"dbo.t: source columns 'Order ID' and 'order_id' both become"):
        delta_column_names(["Order ID", "order_id"], table="dbo.t")
