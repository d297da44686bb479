from include.control import snapshot
from tests.control.helpers import add


def test_the_snapshot_dag_writes_every_control_row(airflow_db, control_connection, repo, tmp_path, monkeypatch):
    from dataplatform.factories.snapshot import build_snapshot_dag

    path = tmp_path / "snap" / "control.json"
    monkeypatch.setenv(snapshot.SNAPSHOT_PATH_ENV, str(path))
    add(repo, "sales.orders")
    add(repo, "sales.old", is_active=False)

    run = build_snapshot_dag().test()

    assert run.state == "success"
    taken = snapshot.read(path)
    assert [r["control_key"] for r in taken.rows] == ["sales.old", "sales.orders"]
    assert [r["is_active"] for r in taken.rows] == [False, True]
    assert taken.rows[1]["primary_key_columns"] == ["order_id"]
