"""Test DAG: the README's complete DAG ("A complete DAG"), as it is there but for where its
results go: a local folder beside the DAGs folder that does not exist yet, instead of
s3://my-bucket/summaries. tests/integration/dags/test_readme_dag.py checks that nothing
else differs, and runs it as a manual run (no logical date) and as a scheduled one against
the emulator.
"""

import json
from datetime import datetime

from airflow.sdk import ObjectStoragePath, dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False)
def nightly_summaries():
    @task
    def build_requests() -> list[dict]:
        return [
            {"custom_id": f"doc-{i}", "body": {"messages": [{"role": "user", "content": text}]}}
            for i, text in enumerate(["Summarise ...", "Summarise ..."])
        ]

    summarise = MistralBatchOperator(
        task_id="summarise",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=build_requests(),
        deferrable=True,  # wait in the triggerer, not in a worker slot
        max_failed_ratio=0.01,  # fail the task if more than 1% of the requests failed
        retries=2,  # a retry reattaches to the running job
        # One line per request, in input order, with its answer or error; any
        # ObjectStoragePath URL your deployment has a filesystem for, or a local path
        # (missing local folders are made). run_after is set on every run, scheduled or
        # triggered by hand; ds is not (a manual run has no logical date in Airflow 3).
        results_path="{{ dag.folder }}/../readme/{{ dag_run.run_after | ts_nodash }}.jsonl",
    )

    @task
    def store(summary: dict) -> int:
        stored = 0
        with ObjectStoragePath(summary["results_path"]).open("r") as lines:
            for line in lines:
                result = json.loads(line)  # {"custom_id", "status", "ok", "response", ...}
                if result["ok"]:
                    stored += 1  # save result["response"] under result["custom_id"] here
        print("tokens used:", summary["usage"]["total_tokens"])
        return stored

    store(summarise.output)


nightly_summaries()
