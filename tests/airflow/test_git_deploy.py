"""Deployment from git: the DAGs come from a GitDagBundle of a bare repository; a push deploys, no rebuild.

The stack's PYTHONPATH holds this checkout as the image would: a change seen in Airflow after a push came
from the bundle, not from there.
"""

from include.local.airflow_stack import StackError
from tests.airflow.conftest import RUN_TIMEOUT

SNAPSHOT_DAG = "dataloader_control_snapshot"
PLUGIN = "plugins/dataplatform/factories/snapshot.py"
TAGS = 'tags=["dataloader", "control"]'
RESULT = 'return {"path": str(path),'


def tags(dag: dict) -> set[str]:
    return {t["name"] for t in dag["tags"]}


def test_the_dags_come_from_the_git_bundle_and_only_dags_is_parsed(tier):
    head = tier.deployment.git("rev-parse", "HEAD")
    dags = tier.call("GET", "/dags", params={"limit": 100})["dags"]

    assert {d["bundle_name"] for d in dags} == {"git-dags"}
    details = tier.call("GET", f"/dags/{SNAPSHOT_DAG}/details")
    assert (details["bundle_version"], details["relative_fileloc"]) == (head, "dags/dataloader_control_snapshot.py")
    assert all(
        d["relative_fileloc"].startswith("dags/") for d in tier.call("GET", "/dags", params={"limit": 100})["dags"]
    )
    assert tier.call("GET", "/importErrors")["total_entries"] == 0


def test_a_pushed_sentinel_config_and_plugin_change_are_deployed_and_run_without_a_rebuild(tier):
    deployment = tier.deployment
    plugin = (deployment.work / PLUGIN).read_text()
    assert TAGS in plugin and RESULT in plugin, f"{PLUGIN} changed: update this test's edit"
    config = (deployment.work / "include/sentinel/configs/demo_prod_vs_dr.yaml").read_text()

    sha = deployment.push(
        "a new comparison and a tag on the snapshot DAG",
        {
            "include/sentinel/configs/pushed_check.yaml": config,
            PLUGIN: plugin.replace(TAGS, 'tags=["dataloader", "control", "deployed-from-git"]').replace(
                RESULT, 'return {"deployed": "from git", "path": str(path),'
            ),
        },
    )

    try:
        found = tier.wait_dags(
            "sentinel_pushed_check",
            SNAPSHOT_DAG,
            timeout=RUN_TIMEOUT,
            check=lambda d: d["bundle_version"] == sha,
        )
    except StackError as exc:
        raise AssertionError(f"the push of {sha} was not deployed") from exc
    assert "deployed-from-git" in tags(found[SNAPSHOT_DAG])
    assert (deployment.work / PLUGIN).read_text() != (tier.stack.code_root / PLUGIN).read_text()  # not the image's

    run_id = tier.trigger(SNAPSHOT_DAG)  # a task of the new version runs the new version's code
    assert tier.wait_run(SNAPSHOT_DAG, run_id) == "success"
    assert tier.call("GET", tier.run_path(SNAPSHOT_DAG, run_id))["bundle_version"] == sha
    result = tier.call(
        "GET", tier.run_path(SNAPSHOT_DAG, run_id) + "/taskInstances/write_snapshot/xcomEntries/return_value"
    )
    assert result["value"]["deployed"] == "from git"
