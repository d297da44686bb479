"""The DB Sentinel DAG with dag.test() on the real PostgreSQL pair."""

import json
import threading
import time

import psycopg
import pytest
import yaml

from include.sentinel.compare import TableComparator
from tests.conftest import airflow_conn_json
from tests.sentinel.conftest import drift

DAG_ID = "sentinel_prod_vs_dr"


@pytest.fixture
def sentinel_env(airflow_db, pair, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTINEL_PROD_URL", pair.urls["source"])
    monkeypatch.setenv("SENTINEL_DR_URL", pair.urls["target"])
    monkeypatch.setenv("AIRFLOW_CONN_SENTINEL_DR", airflow_conn_json(pair.urls["target"]))
    monkeypatch.setenv("SENTINEL_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.setenv("SENTINEL_ARTIFACTS_ROOT", f"file://{tmp_path}/artifacts")
    monkeypatch.setenv("SENTINEL_RETRY_DELAY_SECONDS", "0")

    def configure(**airflow):
        (tmp_path / "configs").mkdir(exist_ok=True)
        (tmp_path / "configs" / "prod_vs_dr.yaml").write_text(
            yaml.safe_dump(
                {
                    "source_database": {"db_type": "postgresql", "url_env": "SENTINEL_PROD_URL"},
                    "target_database": {"db_type": "postgresql", "url_env": "SENTINEL_DR_URL"},
                    "tables": [{"table_name": "accounts", "primary_key": ["id"], "chunk_size": 250}],
                    "options": {"max_threads": 1},
                    "airflow": airflow,
                }
            )
        )
        from dataplatform.factories.sentinel import sentinel_dags

        return sentinel_dags()[DAG_ID]

    configure.artifacts = tmp_path / "artifacts"
    return configure


def task_states(run):
    return {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}


def xcoms(run):
    return {
        (ti.task_id, ti.map_index): ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        for ti in run.get_task_instances()
        if ti.state == "success"
    }


def test_a_clean_comparison(sentinel_env):
    run = sentinel_env().test()

    assert run.state == "success", task_states(run)
    [report] = [v for (t, _), v in xcoms(run).items() if t == "report"]
    assert (report["tables"], report["tables_with_differences"]) == (1, 0)
    assert not list(sentinel_env.artifacts.rglob("sync_target_*.sql"))


def test_drift_gives_sql_a_report_and_an_alert_with_small_xcoms(sentinel_env, pair, webhook):
    drift(pair)
    run = sentinel_env(alert_target=webhook.url).test()

    assert run.state == "success", task_states(run)
    assert [m for (t, m) in task_states(run) if t == "compare_chunks"] == [0, 1, 2, 3]
    for key, value in xcoms(run).items():
        assert len(json.dumps(value, default=str)) < 4096, key
    [sql] = sentinel_env.artifacts.rglob("sync_target_ACCOUNTS_*.sql")
    assert "-- inserts 2, updates 7, deletes 1" in sql.read_text()
    [report] = sentinel_env.artifacts.rglob("comparison_report_*.csv")
    assert "accounts,completed,1000,999" in report.read_text()
    [alert] = webhook.received
    assert alert["title"] == f"{DAG_ID}: differences found"
    assert "accounts: 2 missing on target, 1 extra, 7 different" in alert["detail"]


def test_a_failed_chunk_is_retried_and_only_its_chunk_recomputed(sentinel_env, pair, monkeypatch):
    drift(pair)
    calls = []
    real = TableComparator.compare_chunk

    def flaky(self, chunk, columns):
        calls.append(chunk.index)
        if chunk.index == 2 and calls.count(2) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly (injected)")
        return real(self, chunk, columns)

    monkeypatch.setattr(TableComparator, "compare_chunk", flaky)
    run = sentinel_env().test()

    assert run.state == "success", task_states(run)
    assert sorted(calls) == [0, 1, 2, 2, 3]
    [sql] = sentinel_env.artifacts.rglob("sync_target_ACCOUNTS_*.sql")
    assert "-- inserts 2, updates 7, deletes 1" in sql.read_text()


def test_the_catch_up_sensor_defers_until_the_target_has_caught_up(sentinel_env, pair):
    pair.sql("target", "CREATE TABLE heartbeat (beat timestamptz)")
    dag = sentinel_env(
        catch_up={
            "conn_id": "sentinel_dr",
            "sql": "SELECT count(*) FROM heartbeat",
            "max_wait_minutes": 1,
            "poll_seconds": 0.5,
        }
    )

    def beat():
        time.sleep(2)
        pair.sql("target", "INSERT INTO heartbeat VALUES (now())")

    threading.Thread(target=beat).start()
    run = dag.test()

    assert run.state == "success", task_states(run)
    assert task_states(run)[("wait_for_target", -1)] == "success"


def test_sla_minutes_becomes_the_dags_deadline(sentinel_env):
    dag = sentinel_env(sla_minutes=90, alert_target="https://hooks.example.invalid/x")
    [alert] = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert alert.interval.total_seconds() == 90 * 60
    assert alert.callback.kwargs == {
        "control_key": DAG_ID,
        "dag_id": DAG_ID,
        "sla_minutes": 90,
        "alert_target": "https://hooks.example.invalid/x",
    }


def test_many_chunks_are_batched_under_the_map_limit(pair, tmp_path, monkeypatch):
    from include.sentinel.config import load_config
    from include.sentinel.steps import Layout, compare_batch, plan_tables
    from tests.sentinel.test_cli import write_config

    config = load_config(write_config(tmp_path, monkeypatch, pair.urls))  # chunks of 250 keys: 4 chunks
    layout = Layout(tmp_path / "artifacts", "manual__1")
    items = plan_tables(config, layout, max_items=3)

    assert [item["chunks"] for item in items] == [[0, 1], [2, 3]]
    summaries = [s for item in items for s in compare_batch(config, layout, item)]
    assert [s["index"] for s in summaries] == [0, 1, 2, 3]
    assert all(s["equal"] for s in summaries)


def test_the_dag_writes_audit_events_through_the_same_steps(sentinel_env, pair):
    drift(pair)
    run = sentinel_env().test()
    assert run.state == "success", task_states(run)
    [audit] = sentinel_env.artifacts.rglob("audit_*.jsonl")
    events = [json.loads(line)["event"] for line in audit.read_text().splitlines()]
    assert events == ["COMPARISON_START", "CHUNK", "CHUNK", "CHUNK", "CHUNK", "COMPARISON_END"]


def test_the_dag_refuses_an_unusable_side_of_another_engine_in_its_plan(pair, tmp_path, monkeypatch):
    from include.sentinel.config import ConfigError, load_config
    from include.sentinel.steps import Layout, plan_tables
    from tests.sentinel.test_cli import write_config

    path = write_config(tmp_path, monkeypatch, pair.urls)
    raw = yaml.safe_load(path.read_text())
    raw["target_database"] = {"db_type": "oracle", "host": "dr", "password_env": "SENTINEL_UNSET_DR_PASSWORD"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="target_database: set the environment variable SENTINEL_UNSET_DR_PASSWORD"):
        plan_tables(load_config(path), Layout(tmp_path / "artifacts", "manual__1"))
    assert not (tmp_path / "artifacts").exists()


def test_a_bad_config_gets_its_own_placeholder_dag_and_the_others_are_unaffected(sentinel_env, tmp_path):
    good = sentinel_env()
    configs = tmp_path / "configs"
    (configs / "broken_yaml.yaml").write_text("tables: [unclosed\n")
    (configs / "no_key.yaml").write_text(
        yaml.safe_dump({"source_database": {}, "target_database": {}, "tables": [{"table_name": "t"}]})
    )
    from dataplatform.factories.sentinel import sentinel_dags

    dags = sentinel_dags()

    assert set(dags) == {DAG_ID, "sentinel_broken_yaml", "sentinel_no_key"}
    assert [t.task_id for t in dags[DAG_ID].tasks] == [t.task_id for t in good.tasks]
    broken = dags["sentinel_no_key"]
    assert [t.task_id for t in broken.tasks] == ["report_invalid_config"]
    assert "invalid-config" in broken.tags
    assert "no_key.yaml: table t: primary_key is required" in broken.doc_md
    assert "not valid YAML" in dags["sentinel_broken_yaml"].doc_md
    run = broken.test()
    assert run.state == "failed"
