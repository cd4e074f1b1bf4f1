"""Demo: an example DAG end to end under a real Airflow against the local Mistral emulator.

Starts the emulator on a free loopback port, gives Airflow a private home with a migrated
SQLite DB, points ``mistral_default`` at the emulator and runs two example DAGs with
``dag.test()``:

- ``example_mistral_batch_chat``: the operator validates and submits five chat requests,
  defers to the trigger, writes the results joined with the requests to an
  ``ObjectStoragePath`` (``file://`` in the Airflow home here), and a downstream task reads
  the answers from there;
- ``example_mistral_batch_embeddings``: the operator validates and uploads a JSONL file,
  creates the job and waits in the worker; the demo then downloads the output file.

For each it prints the job, its XCom values (``batch_job_id``, ``output_file``,
``error_file``) and a few results; for the chat DAG also the results path, the token usage
and the count of requests with no result.

Run it with ``scripts/demo.sh`` (which sets up the virtualenv).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHAT_DAG_ID = "example_mistral_batch_chat"
CHAT_TASK_ID = "answer_questions"
EMBEDDINGS_DAG_ID = "example_mistral_batch_embeddings"
EMBEDDINGS_TASK_ID = "embed_documents"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=float, default=2.0, help="emulator requests per second")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    args = parser.parse_args()

    from mistral_batch_emulator.dagtest import (
        migrate_db,
        set_mistral_connection,
        stage_dags,
        use_private_airflow_home,
    )

    dags = stage_dags(REPO / "example_dags")
    home = use_private_airflow_home(dags)
    if not args.verbose:
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    (home / "results").mkdir(exist_ok=True)
    os.environ["MISTRAL_EXAMPLE_RESULTS"] = f"file://{home}/results"
    # The examples poll once a minute, as suits the real API; the emulator needs no such wait.
    os.environ["MISTRAL_EXAMPLE_POLL_SECONDS"] = "1"
    print(f"Airflow home: {home} (migrating its SQLite DB...)")
    migrate_db()

    from mistral_batch_emulator import EmulatorConfig, run_emulator
    from mistral_batch_emulator.dagtest import load_dag

    # One request is told to fail, to show the error file and the failure policy at work.
    config = EmulatorConfig(requests_per_second=args.rps, failing_custom_ids={"question-3"})
    with run_emulator(config) as emulator:
        print(f"Mistral emulator: {emulator.base_url}")
        set_mistral_connection(emulator.base_url, emulator.api_key)
        print(f"Running DAG {CHAT_DAG_ID} with dag.test() ...")
        dag_run = load_dag(dags, CHAT_DAG_ID).test()

        if not _show_chat_run(dag_run):
            return 1
        print(f"\nRunning DAG {EMBEDDINGS_DAG_ID} with dag.test() ...")
        dag_run = load_dag(dags, EMBEDDINGS_DAG_ID).test()
        if not _show_embeddings_run(dag_run, home):
            return 1
    return 0


def _show_states(dag_run: Any) -> bool:
    from mistral_batch_emulator.dagtest import task_states

    print(f"\nDAG run {dag_run.dag_id} / {dag_run.run_id}: {dag_run.state}")
    for (task_id, _), (state, tries) in sorted(task_states(dag_run).items()):
        print(f"  {task_id:<18} {state} (try {tries})")
    if str(dag_run.state) != "success":
        print("The DAG run failed; run again with --verbose for Airflow's logs.")
        return False
    return True


def _show_job_and_xcom(dag_run: Any, task_id: str) -> dict[str, Any]:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from mistral_batch_emulator.dagtest import xcom_value

    summary: dict[str, Any] = xcom_value(dag_run, task_id)
    job = MistralBatchHook().get_batch_job(summary["job_id"])
    print(f"\nJob {job.id}: {job.status}, endpoint {job.endpoint}, model {job.model}")
    if job.input_files:
        print(f"  input files: {', '.join(job.input_files)}")
    print(
        f"  requests: {job.total_requests} total, {job.succeeded_requests} succeeded, "
        f"{job.failed_requests} failed"
    )
    print(f"\nXCom of {task_id}:")
    for key in ("batch_job_id", "output_file", "error_file"):
        print(f"  {key:<13} {xcom_value(dag_run, task_id, key)}")
    print(f"  return_value  {json.dumps(summary)}")
    return summary


def _show_chat_run(dag_run: Any) -> bool:
    """Chat: inline requests, deferred wait, answers read downstream through the hook."""
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchResultLine
    from mistral_batch_emulator.dagtest import xcom_value

    if not _show_states(dag_run):
        return False
    summary = _show_job_and_xcom(dag_run, CHAT_TASK_ID)
    print(f"\nResults joined with the requests: {summary['results_path']}")
    print(f"  missing requests: {summary['missing_requests']}")
    usage = summary["usage"] or {}
    print(
        f"  usage: {usage.get('prompt_tokens', 0):,} prompt + "
        f"{usage.get('completion_tokens', 0):,} completion = "
        f"{usage.get('total_tokens', 0):,} tokens"
    )
    print("\nA few results (read from that file by the downstream task read_answers):")
    answers = xcom_value(dag_run, "read_answers")
    for custom_id, answer in list(answers.items())[:4]:
        print(f"  {custom_id}: {answer}")
    if summary["error_file"]:
        print("\nThe error file:")
        for line in MistralBatchHook().iter_file_lines(summary["error_file"]):
            failed = BatchResultLine.model_validate_json(line)
            print(f"  {failed.custom_id}: {failed.error_message}")
    return True


def _show_embeddings_run(dag_run: Any, home: Path) -> bool:
    """Embeddings: a JSONL file uploaded, blocking wait; the output downloaded to disk."""
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchResultLine

    if not _show_states(dag_run):
        return False
    summary = _show_job_and_xcom(dag_run, EMBEDDINGS_TASK_ID)
    target = home / "embeddings_output.jsonl"
    MistralBatchHook().download_file(summary["output_file"], target)
    print(f"\nOutput file downloaded to {target}; its first lines:")
    with target.open("rb") as lines:
        for line, _ in zip(lines, range(3), strict=False):
            result = BatchResultLine.model_validate_json(line)
            body = result.response.body if result.response is not None else {}
            vector = body["data"][0]["embedding"]
            print(f"  {result.custom_id}: {len(vector)}-dimension vector {vector[:3]}...")
    return True


if __name__ == "__main__":
    sys.exit(main())
