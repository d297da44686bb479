"""The load's view of a Databricks run: which task run holds the output, and the summary in its logs."""

import pytest

from dataplatform.hooks.databricks_runs import TaskOutput, TaskRun, submit_payload
from dataplatform.operators.load import _last_json_line

PAGE = "https://adb-1.azuredatabricks.net/?o=1#job/880/run/641"

# runs/get of a one-time run whose task was retried once (two attempts of one task_key)
RUN = {
    "run_id": 641,
    "job_id": 880,
    "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
    "run_page_url": PAGE,
    "tasks": [
        {
            "task_key": "dataloader",
            "run_id": 700,
            "attempt_number": 0,
            "start_time": 1,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
        },
        {
            "task_key": "dataloader",
            "run_id": 701,
            "attempt_number": 1,
            "start_time": 2,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
            "run_page_url": PAGE.replace("run/641", "run/701"),
        },
    ],
}


def test_the_output_is_read_from_the_last_attempt_of_the_task():
    assert TaskRun.latest(RUN) == TaskRun(701, "dataloader", "TERMINATED", "SUCCESS", PAGE.replace("641", "701"))
    assert TaskRun.latest({**RUN, "tasks": []}) is None


def test_the_submit_body_is_the_multi_task_form():
    assert submit_payload(
        run_name="r" * 120,
        cluster={"existing_cluster_id": "c-1"},
        python_file="/Workspace/job.py",
        parameters=("--a", "1"),
    ) == {
        "run_name": "r" * 100,
        "tasks": [
            {
                "task_key": "dataloader",
                "existing_cluster_id": "c-1",
                "spark_python_task": {"python_file": "/Workspace/job.py", "parameters": ["--a", "1"]},
            }
        ],
    }


@pytest.mark.parametrize(
    "logs",
    [
        '{"summary": {"inserted": 3}}\n',
        'INFO starting\n{"summary": {"inserted": 3}}\n{"level": "INFO", "msg": "spark stopped"}\nbye\n',
        '{"summary": {"inserted": 1}}\n{not json\n{"summary": {"inserted": 3}}',
    ],
)
def test_the_summary_is_the_last_json_line_with_a_summary(logs):
    assert _last_json_line(TaskOutput(logs, False, None), PAGE) == {"summary": {"inserted": 3}}


def test_a_chunk_plan_is_a_result_too():
    assert _last_json_line(TaskOutput('{"chunks": []}\n', False, None), PAGE) == {"chunks": []}


def test_no_summary_names_the_run_page_and_a_truncation():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as error:
        _last_json_line(TaskOutput("Spark is starting\n", True, None), PAGE)

    assert "printed no JSON summary (the logs were truncated to their last 5 MB)" in str(error.value)
    assert PAGE in str(error.value) and "'Spark is starting\\n'" in str(error.value)
