"""The bad-input corpus (bad_inputs.yaml): each case is refused with exit status 2 and one line on stderr that
names the field, and changes nothing, asserted by comparing every table of the control database (and the
sentinel's output folder) before and after.

The CLIs run in-process (fast); the cases of SUBPROCESS also run as a real process, as a shell would start them.
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from include.control.repository import ControlRepository
from include.dataloader import cli as dataloader_cli
from include.sentinel import cli as sentinel_cli
from tests import canary
from tests.control.helpers import add as add_row

ROOT = Path(__file__).resolve().parents[2]
CASES = yaml.safe_load((Path(__file__).with_name("bad_inputs.yaml")).read_text())
SUBPROCESS = {"import-binary-garbage", "add-unknown-flag", "sentinel-where-two-statements"}

EXISTING = "sales.orders"  # the valid row of the database, which `update` and `sql` cases change
NEW_ROW = {  # a valid row that an `import` or `add` case would add if it were accepted
    "control_key": "sales.returns",
    "db_config_key": "sales_pg",
    "source_table_name": "returns",
    "destination_schema": "sales",
    "destination_table_name": "returns",
    "load_strategy": "incremental",
    "cron": "0 * * * *",
    "incremental_column": "updated_at",
    "incremental_type": "timestamp",
    "primary_key_columns": ["return_id"],
}
SENTINEL_CONFIG = {
    "source_database": {"db_type": "postgresql", "url_env": "BAD_INPUT_SOURCE_URL"},
    "target_database": {"db_type": "postgresql", "url_env": "BAD_INPUT_TARGET_URL"},
    "tables": [{"table_name": "accounts", "primary_key": ["id"], "chunk_size": 100}],
    "options": {"max_threads": 2, "audit_db_url_env": "BAD_INPUT_AUDIT_URL"},
}


def test_the_corpus_is_large_and_unambiguous():
    names = [c["case"] for c in CASES]
    assert len(names) >= 60 and len(set(names)) == len(names)
    assert all(c.get("field") for c in CASES)
    assert set(names) >= SUBPROCESS


@pytest.fixture(scope="module")
def world(pg_url, control_template, tmp_path_factory):
    """One control database for the module (every case must leave it as it was; the comparison proves it),
    holding a dbconfig and one valid row; the sentinel's output folder; the environment of both CLIs."""
    name = f"bad_input_{os.getpid()}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(*map(sql.Identifier, (name, control_template))))
    from include.local.postgres import database_url

    url = database_url(pg_url, name)
    add_row(ControlRepository(url, change_source="test"), EXISTING)
    folder = tmp_path_factory.mktemp("bad_input")
    env = {"BAD_INPUT_SOURCE_URL": url, "BAD_INPUT_TARGET_URL": url, "BAD_INPUT_AUDIT_URL": url}
    saved = {k: os.environ.get(k) for k in [*env, "DATALOADER_CONTROL_DB_URL"]}
    os.environ.update(env)
    os.environ.pop("DATALOADER_CONTROL_DB_URL", None)
    yield {"url": url, "folder": folder, "out": folder / "sentinel_out", "env": env}
    if conn := _connections.pop(url, None):
        conn.close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def database_state(url: str) -> list[tuple[str, str]]:
    """Every row of every table of the control database, as (table, row as JSON), in one query on one
    connection kept for the module (the corpus runs it twice per case)."""
    conn = _connections.get(url)
    if conn is None:
        conn = _connections[url] = psycopg.connect(url, autocommit=True)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        )
    ]
    each = sql.SQL("SELECT {}::text, to_jsonb(t)::text FROM {} t")
    query = sql.SQL(" UNION ALL ").join(each.format(sql.Literal(t), sql.Identifier(t)) for t in tables)
    return sorted(conn.execute(query).fetchall())


_connections: dict[str, psycopg.Connection] = {}


def folder_state(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in folder.rglob("*")
    }


# -- building a case's command ------------------------------------------------------------------------------


def _without(document, dotted: str):
    *parents, last = dotted.split(".")
    for part in parents:
        document = document[int(part)] if isinstance(document, list) else document[part]
    del document[int(last) if isinstance(document, list) else last]


def _merged(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) and key in out else value
    return out


def _input_file(case: dict, folder: Path, base: dict) -> Path:
    """The case's file: ``file``/``file_hex`` as given, else the base document with the case's changes."""
    path = folder / f"{case['case']}.yaml"
    if "file_hex" in case:
        path.write_bytes(bytes.fromhex(case["file_hex"]))
        return path
    if "file" in case:
        path.write_text(case["file"])
        return path
    if case.get("secret_input"):
        canary.by_design(path, "a bad-input case's own file: a password put into a config, which must be refused")
    document = _merged(base, case.get("config") or {})
    document["tables"][0].update(copy.deepcopy(case.get("row") or case.get("table") or {}))
    for dotted in case.get("drop", []):
        # a dotted path or a top-level key; else a field of the first table
        _without(document, dotted if "." in dotted or dotted in document else f"tables.0.{dotted}")
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


def command(case: dict, world: dict) -> tuple[str, list[str]]:
    """(cli, argv) of a case: cli is ``dataloader`` or ``sentinel``."""
    via, db = case["via"], ["--db-url", world["url"]]
    if via == "import":
        return "dataloader", [*db, "tables", "import", str(_input_file(case, world["folder"], {"tables": [NEW_ROW]}))]
    if via == "add":
        flags = {k.replace("_", "-"): ",".join(v) if isinstance(v, list) else v for k, v in NEW_ROW.items()}
        flags |= case.get("flags", {})
        for name in case.get("drop", []):
            del flags[name]
        return "dataloader", [*db, "tables", "add", *(x for k, v in flags.items() for x in (f"--{k}", str(v)))]
    if via == "update":
        return "dataloader", [*db, "tables", "update", EXISTING, *(x for s in case["set"] for x in ("--set", s))]
    if via == "sql":
        key = case["sql_set"].get("control_key", EXISTING)
        return "dataloader", [*db, "run", key, "--warehouse", str(world["folder"] / "warehouse")]
    if via == "dbconfig":
        return "dataloader", [*db, "dbconfig", "add", *case["argv"]]
    if via == "dataloader":
        return "dataloader", [*([] if case.get("no_db_url") else db), *case["argv"]]
    if "argv" in case:
        return "sentinel", case["argv"]
    config = {**SENTINEL_CONFIG, "options": {**SENTINEL_CONFIG["options"], "output_dir": str(world["out"])}}
    path = _input_file(case, world["folder"], config)
    return "sentinel", ["compare", str(path), *case.get("args", [])]


def run_in_process(cli: str, argv: list[str], capsys) -> tuple[int, str, str]:
    main = {"dataloader": dataloader_cli.main, "sentinel": sentinel_cli.main}[cli]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_as_process(cli: str, argv: list[str], world: dict) -> tuple[int, str, str]:
    module = {"dataloader": "include.dataloader.cli", "sentinel": "include.sentinel"}[cli]
    env = {**os.environ, **world["env"], "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    done = subprocess.run(
        [sys.executable, "-m", module, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout, done.stderr


# -- rows written with SQL ---------------------------------------------------------------------------------


@pytest.fixture
def written_with_sql(world):
    """``write(changes)``: set columns of the valid row with plain SQL (no validation); put back afterwards."""
    url, restore = world["url"], {}

    def write(changes: dict) -> None:
        with psycopg.connect(url) as conn:
            columns = list(changes)
            restore.update(
                zip(
                    columns,
                    conn.execute(
                        sql.SQL("SELECT {} FROM table_control WHERE control_key = %s").format(
                            sql.SQL(", ").join(map(sql.Identifier, columns))
                        ),
                        (EXISTING,),
                    ).fetchone(),
                    strict=True,
                )
            )
            restore["__key__"] = changes.get("control_key", EXISTING)
            assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
            conn.execute(
                sql.SQL("UPDATE table_control SET {} WHERE control_key = %s").format(assignments),
                [*changes.values(), EXISTING],
            )

    yield write
    if restore:
        key = restore.pop("__key__")
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in restore)
        with psycopg.connect(url) as conn:
            conn.execute(
                sql.SQL("UPDATE table_control SET {} WHERE control_key = %s").format(assignments),
                [*restore.values(), key],
            )


def assert_placeholder_dag(url: str, key: str, field: str) -> None:
    """The DAG factory gives the row a placeholder DAG that names the field, and builds no loader DAG for it."""
    from dataplatform.factories.loader import InvalidControlRowWarning, invalid_dag_id, loader_dags

    rows = ControlRepository(url, change_source="test").list()
    with pytest.warns(InvalidControlRowWarning, match=field):
        dags = loader_dags(rows)
    assert key not in dags
    assert field in dags[invalid_dag_id(key)].doc_md


# -- the cases ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_bad_input_is_refused_in_one_line_naming_the_field_and_changes_nothing(case, world, written_with_sql, capsys):
    if case["via"] == "sql":
        written_with_sql(case["sql_set"])
    cli, argv = command(case, world)
    before = database_state(world["url"]), folder_state(world["out"])

    code, out, err = run_in_process(cli, argv, capsys)

    lines = err.strip().splitlines()
    assert (code, len(lines), out) == (2, 1, ""), f"exit {code}, stderr:\n{err}"
    assert case["field"] in lines[0]
    assert (database_state(world["url"]), folder_state(world["out"])) == before
    if case["via"] == "sql":
        assert_placeholder_dag(world["url"], case["sql_set"].get("control_key", EXISTING), case["field"])


@pytest.mark.parametrize("name", sorted(SUBPROCESS))
def test_bad_input_is_refused_the_same_by_a_real_process(name, world):
    [case] = [c for c in CASES if c["case"] == name]
    cli, argv = command(case, world)
    before = database_state(world["url"]), folder_state(world["out"])

    code, out, err = run_as_process(cli, argv, world)

    lines = err.strip().splitlines()
    assert (code, len(lines), out) == (2, 1, ""), f"exit {code}, stderr:\n{err}"
    assert case["field"] in lines[0] and "Traceback" not in err
    assert (database_state(world["url"]), folder_state(world["out"])) == before
