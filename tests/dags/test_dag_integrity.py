"""Every file in dags/ parses, with no import errors and the conventions operators rely on."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    """The dags/ folder parsed with the demo control table as the snapshot."""
    from airflow.dag_processing.dagbag import DagBag

    from include.control import snapshot
    from include.dataloader.cli import load_import_file

    rows, dbconfigs = load_import_file(ROOT / "include" / "demo" / "control_tables.yaml")
    db_types = {c["db_config_key"]: c["db_type"] for c in dbconfigs}
    path = snapshot.write(
        tmp_path_factory.mktemp("snapshot") / "snapshot.json",
        [r.as_columns() | {"db_type": db_types[r.db_config_key]} for r in rows],
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(snapshot.SNAPSHOT_PATH_ENV, str(path))
        yield DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_dag_file_defines_a_dag(dagbag):
    files = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert files == {p.name for p in DAGS.glob("*.py")}


def test_every_dag_has_an_owner_tags_docs_and_no_catchup(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        assert dag.catchup is False, dag_id
        assert dag.default_args.get("owner") not in (None, "airflow"), dag_id


def test_the_demo_control_table_makes_one_dag_per_row(dagbag):
    loaders = sorted(d for d in dagbag.dag_ids if d.startswith("demo."))
    assert loaders == [
        "demo.customers",
        "demo.daily_metrics",
        "demo.events",
        "demo.order_lines",  # the ClickHouse source
        "demo.orders",
        "demo.products",
        "demo.transactions",
    ]
    assert [t.task_id for t in dagbag.dags["demo.transactions"].topological_sort()] == [
        "queue",
        "plan",
        "load_chunk",
        "finalize",
        "verify",  # the demo row has verify: true
    ]
    assert "verify" not in dagbag.dags["demo.customers"].task_ids
