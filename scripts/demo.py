"""Demo: an example DAG end to end under a real Airflow against the local Mistral emulator.

Starts the emulator on a free loopback port, gives Airflow a private home with a migrated
SQLite DB, points ``mistral_default`` at the emulator and runs ``example_mistral_batch_chat``
with ``dag.test()``: the operator validates and submits five chat requests, defers to the
trigger, and a downstream task reads the answers through the hook. Then it prints the job,
its XCom values (``batch_job_id``, ``output_file``, ``error_file``) and a few results.

Run it with ``scripts/demo.sh`` (which sets up the virtualenv).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "example_mistral_batch_chat"
TASK_ID = "answer_questions"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=float, default=2.0, help="emulator requests per second")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    args = parser.parse_args()

    from airflow_provider_mistral_batch.testing import (
        migrate_db,
        set_mistral_connection,
        stage_dags,
        use_private_airflow_home,
    )

    dags = stage_dags(REPO / "example_dags")
    home = use_private_airflow_home(dags)
    if not args.verbose:
        import os

        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    print(f"Airflow home: {home} (migrating its SQLite DB...)")
    migrate_db()

    from airflow_provider_mistral_batch.emulator import EmulatorConfig, run_emulator
    from airflow_provider_mistral_batch.testing import load_dag, task_states, xcom_value

    # One request is told to fail, to show the error file and the failure policy at work.
    config = EmulatorConfig(requests_per_second=args.rps, failing_custom_ids={"question-3"})
    with run_emulator(config) as emulator:
        print(f"Mistral emulator: {emulator.base_url}")
        set_mistral_connection(emulator.base_url, emulator.api_key)
        print(f"Running DAG {DAG_ID} with dag.test() ...")
        dag_run = load_dag(dags, DAG_ID).test()

        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
        from airflow_provider_mistral_batch.models import BatchResultLine

        print(f"\nDAG run {dag_run.run_id}: {dag_run.state}")
        for (task_id, _), (state, tries) in sorted(task_states(dag_run).items()):
            print(f"  {task_id:<18} {state} (try {tries})")
        if str(dag_run.state) != "success":
            print("The DAG run failed; run again with --verbose for Airflow's logs.")
            return 1

        summary = xcom_value(dag_run, TASK_ID)
        job = MistralBatchHook().get_batch_job(summary["job_id"])
        print(f"\nJob {job.id}: {job.status}, endpoint {job.endpoint}, model {job.model}")
        print(
            f"  requests: {job.total_requests} total, {job.succeeded_requests} succeeded, "
            f"{job.failed_requests} failed"
        )
        print(f"\nXCom of {TASK_ID}:")
        for key in ("batch_job_id", "output_file", "error_file"):
            print(f"  {key:<13} {xcom_value(dag_run, TASK_ID, key)}")
        print(f"  return_value  {json.dumps(summary)}")

        print("\nA few results (read by the downstream task read_answers):")
        answers = xcom_value(dag_run, "read_answers")
        for custom_id, answer in list(answers.items())[:3]:
            print(f"  {custom_id}: {answer}")
        if summary["error_file"]:
            print("\nThe error file:")
            for line in MistralBatchHook().iter_file_lines(summary["error_file"]):
                failed = BatchResultLine.model_validate_json(line)
                print(f"  {failed.custom_id}: {failed.error_message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
