"""The example DAGs on a real Airflow deployment, driven through the REST API and signals.

Unlike ``dag.test()``, a deferred task's trigger runs here in the triggerer process, read back
from the metadata DB. Each test holds the emulator's jobs RUNNING until the task under test is
deferred, then lets them end: no test depends on how fast the machine is. One test does the
opposite on purpose: its jobs end right after their tasks defer.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Any

import psutil
import pytest
from packaging.version import Version

from tests.system.deployment.harness import RunningDeployment, wait_for

pytestmark = [pytest.mark.deployment, pytest.mark.integration]

CHAT = "example_mistral_batch_chat"
SENSOR_CANCEL = "example_mistral_batch_sensor_cancel"
MAPPED = "example_mistral_batch_mapped"
TYPED = "example_mistral_batch_typed"
TASKFLOW = "example_mistral_batch_taskflow"
COMMON_AI = "example_common_ai_mistral"
FAST = "deployment_fast_jobs"  # tests/system/deployment/dags/deployment_fast_jobs.py
FAST_TASKS = 10
TRIGGER = "airflow_provider_mistral_batch.triggers.batch.MistralBatchJobTrigger"
RUN_TIMEOUT = 180.0
WAIT_TIMEOUT = 120.0
# Airflow calls a trigger's on_kill (where the job is cancelled) from 3.3 on.
CALLS_TRIGGER_ON_KILL = Version(version("apache-airflow")) >= Version("3.3")
# Where example_common_ai_mistral defers (see its DEFERRABLE).
COMMON_AI_DEFERS = Version(version("apache-airflow")) >= Version("3.3")


def _wait_for_success(airflow: RunningDeployment, dag_id: str, run_id: str) -> None:
    run = airflow.api.wait_for_run(dag_id, run_id, RUN_TIMEOUT)
    assert run["state"] == "success", airflow.api.describe_run(dag_id, run_id)


def _task_jobs(airflow: RunningDeployment, dag_id: str, run_id: str, task_id: str) -> list[Any]:
    return airflow.mistral_jobs(
        airflow_dag_id=dag_id, airflow_run_id=run_id, airflow_task_id=task_id
    )


def test_the_chat_example_waits_in_the_triggerer_and_succeeds(
    airflow_deployment: RunningDeployment,
) -> None:
    airflow, api = airflow_deployment, airflow_deployment.api
    airflow.hold_jobs()
    run_id = api.trigger(CHAT)
    deferred = airflow.wait_until_deferred(CHAT, run_id, "answer_questions")
    assert deferred["trigger"]["classpath"] == TRIGGER
    # wait_until_deferred saw it held by a heartbeating triggerer; checked once more here, a
    # heartbeat late under load must not count against it.
    assert deferred["trigger"]["triggerer_id"] in airflow.triggerer_job_ids(heartbeating=False)
    airflow.release_jobs()
    _wait_for_success(airflow, CHAT, run_id)

    summary = api.xcom(CHAT, run_id, "answer_questions")
    job_id = api.xcom(CHAT, run_id, "answer_questions", "batch_job_id")
    output_file = api.xcom(CHAT, run_id, "answer_questions", "output_file")
    assert summary["job_id"] == job_id
    assert summary["status"] == "SUCCESS"
    assert (summary["total_requests"], summary["failed_requests"]) == (5, 0)
    assert output_file
    assert output_file == summary["output_file"]
    job = airflow.mistral_job(job_id)
    assert (job["status"], job["output_file"]) == ("SUCCESS", output_file)
    assert [job["id"] for job in _task_jobs(airflow, CHAT, run_id, "answer_questions")] == [job_id]
    answers = api.xcom(CHAT, run_id, "read_answers")
    assert list(answers) == [f"question-{index}" for index in range(5)]

    # The task log holds the worker's part, then the trigger's lines from the triggerer.
    log = airflow.task_log(CHAT, run_id, "answer_questions")
    assert f"Created Mistral batch job {job_id}" in log
    assert "DEFERRED" in log
    assert f"job {job_id}: SUCCESS, completed 5/5" in log  # the trigger's progress line
    assert f"Mistral batch job {job_id} succeeded" in log  # execute_complete, back on a worker


def test_a_killed_triggerer_is_replaced_and_the_task_keeps_its_one_job(
    airflow_deployment: RunningDeployment,
) -> None:
    airflow, api = airflow_deployment, airflow_deployment.api
    deployment = airflow.deployment
    airflow.hold_jobs()
    run_id = api.trigger(CHAT)
    deferred = airflow.wait_until_deferred(CHAT, run_id, "answer_questions")
    killed_triggerer = deferred["trigger"]["triggerer_id"]
    job_id = api.xcom(CHAT, run_id, "answer_questions", "batch_job_id")

    triggerer = deployment.components["triggerer"]
    processes = triggerer.tree()
    assert len(processes) >= 2, "the triggerer has a serve-logs child"
    deployment.kill("triggerer")
    survivors = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"processes of the killed triggerer still run: {survivors}"
    assert not _port_is_listened_on(deployment.trigger_log_port), "its log server port is held"

    deployment.restart("triggerer")

    def adopted() -> dict[str, Any] | None:
        deployment.check_alive()
        instance = api.task_instance(CHAT, run_id, "answer_questions")
        held_by = (instance.get("trigger") or {}).get("triggerer_id")
        fresh = held_by not in (None, killed_triggerer) and held_by in airflow.triggerer_job_ids()
        return instance if fresh else None

    instance = wait_for(
        adopted,
        timeout=WAIT_TIMEOUT,
        what="the new triggerer to take over the trigger",
        details=lambda: api.describe_run(CHAT, run_id) + deployment.log_tails(),
    )
    assert instance["state"] == "deferred"
    airflow.release_jobs()
    _wait_for_success(airflow, CHAT, run_id)

    jobs = _task_jobs(airflow, CHAT, run_id, "answer_questions")
    assert [(job["id"], job["status"]) for job in jobs] == [(job_id, "SUCCESS")]
    assert api.xcom(CHAT, run_id, "answer_questions")["job_id"] == job_id
    assert not airflow.job_requests(job_id, "POST", "/cancel"), "a restart must not cancel"
    log = airflow.task_log(CHAT, run_id, "answer_questions")
    assert f"job {job_id}: SUCCESS, completed 5/5" in log


def test_marking_a_deferred_task_failed_cancels_its_job_on_airflow_3_3(
    airflow_deployment: RunningDeployment,
) -> None:
    airflow, api = airflow_deployment, airflow_deployment.api
    airflow.hold_jobs()
    run_id = api.trigger(CHAT)
    airflow.wait_until_deferred(CHAT, run_id, "answer_questions")
    job_id = api.xcom(CHAT, run_id, "answer_questions", "batch_job_id")
    wait_for(
        lambda: airflow.job_requests(job_id),
        timeout=WAIT_TIMEOUT,
        what="the trigger's first poll of the job",
    )

    api.set_task_state(CHAT, run_id, "answer_questions", "failed")

    if CALLS_TRIGGER_ON_KILL:

        def cancelled() -> dict[str, Any] | None:
            job = airflow.mistral_job(job_id)
            return job if job["status"] == "CANCELLED" else None

        def cancel_logged() -> str | None:
            log = airflow.task_log(CHAT, run_id, "answer_questions")
            return log if f"Cancelled Mistral batch job {job_id}" in log else None

        job = wait_for(
            cancelled,
            timeout=WAIT_TIMEOUT,
            what=f"job {job_id} to be cancelled",
            details=lambda: airflow.task_log(CHAT, run_id, "answer_questions"),
        )
        assert job["completed_requests"] < 5
        log = wait_for(cancel_logged, timeout=WAIT_TIMEOUT, what="the cancel line in the log")
        assert "on_kill" in log  # Airflow's own line before it calls the trigger's on_kill
    else:
        # Airflow 3.1 and 3.2 only drop the trigger: it stops polling and the job runs on.
        wait_for(
            lambda: time.time() - max(airflow.job_requests(job_id)) > 5,
            timeout=WAIT_TIMEOUT,
            what="the trigger to stop polling the job",
        )
        time.sleep(3)
        assert airflow.mistral_job(job_id)["status"] == "RUNNING"
        assert not airflow.job_requests(job_id, "POST", "/cancel")
        log = airflow.task_log(CHAT, run_id, "answer_questions")
        assert f"Cancelled Mistral batch job {job_id}" not in log
        # ... and the log says why.
        wait_for(
            lambda: (
                f"Stopped watching Mistral batch job {job_id} before it ended; it keeps "
                "running" in airflow.task_log(CHAT, run_id, "answer_questions")
            ),
            timeout=WAIT_TIMEOUT,
            what="the trigger's line saying the job keeps running",
            details=lambda: airflow.task_log(CHAT, run_id, "answer_questions"),
        )

    run = api.wait_for_run(CHAT, run_id, RUN_TIMEOUT)
    assert run["state"] == "failed"
    assert api.task_states(CHAT, run_id)[("answer_questions", -1)] == "failed"
    airflow.release_jobs()


def test_the_sensor_and_cancel_example_succeeds(airflow_deployment: RunningDeployment) -> None:
    airflow, api = airflow_deployment, airflow_deployment.api
    airflow.hold_jobs()
    run_id = api.trigger(SENSOR_CANCEL)
    deferred = airflow.wait_until_deferred(SENSOR_CANCEL, run_id, "wait_for_job")
    assert deferred["trigger"]["classpath"] == TRIGGER
    airflow.release_jobs()
    _wait_for_success(airflow, SENSOR_CANCEL, run_id)

    started = api.xcom(SENSOR_CANCEL, run_id, "start_job", "batch_job_id")
    waited = api.xcom(SENSOR_CANCEL, run_id, "wait_for_job")
    assert (waited["job_id"], waited["status"]) == (started, "SUCCESS")
    assert api.xcom(SENSOR_CANCEL, run_id, "wait_for_job", "output_file") == waited["output_file"]
    cancelled = api.xcom(SENSOR_CANCEL, run_id, "cancel_unwanted_job")
    assert cancelled["job_id"] == api.xcom(
        SENSOR_CANCEL, run_id, "start_unwanted_job", "batch_job_id"
    )
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["total_requests"] == 2_000
    assert cancelled["succeeded_requests"] + cancelled["failed_requests"] < 2_000


def test_the_mapped_example_runs_one_deferred_job_per_input(
    airflow_deployment: RunningDeployment,
) -> None:
    airflow, api = airflow_deployment, airflow_deployment.api
    airflow.hold_jobs()
    run_id = api.trigger(MAPPED)
    for map_index in range(3):
        airflow.wait_until_deferred(MAPPED, run_id, "describe_topic", map_index)
    airflow.release_jobs()
    _wait_for_success(airflow, MAPPED, run_id)

    job_ids = set()
    for map_index, count in enumerate((3, 2, 4)):
        summary = api.xcom(MAPPED, run_id, "describe_topic", map_index=map_index)
        assert (summary["status"], summary["succeeded_requests"]) == ("SUCCESS", count)
        job_ids.add(summary["job_id"])
    assert len(job_ids) == 3
    assert {job["id"] for job in _task_jobs(airflow, MAPPED, run_id, "describe_topic")} == job_ids
    assert api.xcom(MAPPED, run_id, "count_results") == 9


def test_jobs_that_end_right_after_the_deferral_succeed_deferred(
    airflow_deployment: RunningDeployment,
) -> None:
    """Ten deferred tasks whose jobs end about a second after they are created, so their
    triggers fire while Airflow has not yet seen the deferring workers exit (its own race,
    apache/airflow#67287 and #72716): every one must still succeed, deferred, in its first try.
    """
    airflow, api = airflow_deployment, airflow_deployment.api
    run_id = api.trigger(FAST)
    _wait_for_success(airflow, FAST, run_id)

    held = 0
    for map_index in range(FAST_TASKS):
        instance = api.task_instance(FAST, run_id, "fast_job", map_index)
        assert (instance["state"], instance["try_number"]) == ("success", 1), instance
        summary = api.xcom(FAST, run_id, "fast_job", map_index=map_index)
        assert (summary["status"], summary["succeeded_requests"]) == ("SUCCESS", 20)
        log = airflow.task_log(FAST, run_id, "fast_job", map_index=map_index)
        assert "DEFERRED" in log, f"fast_job[{map_index}] finished without deferring:\n{log}"
        assert f"Mistral batch job {summary['job_id']} succeeded" in log
        held += f"Mistral batch job {summary['job_id']}: ended SUCCESS; reporting it in" in log
    # The trigger's line when its job ended before Airflow could have seen the deferring worker
    # exit: without any, this run did not meet the race it is here for.
    assert held, "no job ended soon enough after its deferral"


def _port_is_listened_on(port: int) -> bool:
    return any(
        conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
        for conn in psutil.net_connections(kind="tcp")
    )


def test_common_ais_operator_runs_a_mistral_model_deferred_in_the_triggerer(
    airflow_deployment: RunningDeployment,
) -> None:
    # common-ai's trigger rebuilds the adapter by name in the triggerer process: found there
    # through this provider's entry point, not through anything the worker imported. Before
    # Airflow 3.3 the example waits in its worker (its DEFERRABLE says why).
    airflow, api = airflow_deployment, airflow_deployment.api
    if COMMON_AI_DEFERS:
        airflow.hold_jobs()
    run_id = api.trigger(COMMON_AI)
    if COMMON_AI_DEFERS:
        deferred = airflow.wait_until_deferred(COMMON_AI, run_id, "label_reviews")
        assert deferred["trigger"]["classpath"].endswith("LLMBatchTrigger")
        airflow.release_jobs()
    _wait_for_success(airflow, COMMON_AI, run_id)

    manifest = api.xcom(COMMON_AI, run_id, "label_reviews")
    assert (manifest["adapter"], manifest["counts"]["succeeded"]) == ("mistral", 3)
    batch_id = api.xcom(COMMON_AI, run_id, "label_reviews", "batch_id")
    assert airflow.mistral_job(batch_id)["status"] == "SUCCESS"
    counts = api.xcom(COMMON_AI, run_id, "count_labels")
    assert sum(counts.values()) == 3
    assert set(counts) <= {"positive", "negative", "neutral"}


@pytest.mark.parametrize(
    ("dag_id", "task_id", "reader", "requests"),
    [
        (TYPED, "extract_profiles", "read_profiles", 6),
        (TASKFLOW, "extract_cities", "read_cities", 4),
    ],
)
def test_the_typed_examples_validate_every_row_deferred(
    airflow_deployment: RunningDeployment, dag_id: str, task_id: str, reader: str, requests: int
) -> None:
    # The operator with output_type, and @task.mistral_batch (its function ran on a worker,
    # the wait in the triggerer, the rows checked on the worker that resumed it).
    airflow, api = airflow_deployment, airflow_deployment.api
    airflow.hold_jobs()
    run_id = api.trigger(dag_id)
    deferred = airflow.wait_until_deferred(dag_id, run_id, task_id)
    assert deferred["trigger"]["classpath"] == TRIGGER
    airflow.release_jobs()
    _wait_for_success(airflow, dag_id, run_id)

    summary = api.xcom(dag_id, run_id, task_id)
    assert summary["counts"]["success"] == requests
    assert sum(summary["counts"].values()) == requests
    values = api.xcom(dag_id, run_id, reader)
    assert len(values) == requests
    assert all(isinstance(value, dict) for value in values.values()), values
