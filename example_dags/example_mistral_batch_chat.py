"""Chat completions from an inline list of requests, waited for in the triggerer (deferrable).

``build_requests`` returns the requests (through XCom, so they are not rendered as templates);
``answer_questions`` makes one batch job of them and defers: no worker slot is held while the
job runs. It writes the results joined with the requests (one line per question, in order,
failures and token usage included) to object storage, and ``read_answers`` reads them from
there. ``MISTRAL_EXAMPLE_RESULTS`` picks the place (any ``ObjectStoragePath`` URL the
deployment has a filesystem for, e.g. ``s3://bucket/prefix``; a local folder must exist); by
default ``/tmp`` of the worker.

``max_failed_ratio=0.2`` lets one question in five fail and the task still succeed (with a
warning quoting the error file); the default, 0.0, fails the task on any failed request. The
demo (``scripts/demo.sh``) makes one question fail on purpose, to show the error file.

What to look at in the UI, on ``answer_questions``: the state Deferred while the job runs;
the **Mistral batch** tab (status, progress bar, ETA, then token usage and a download of the
output); the **Mistral batch job** link; the XComs ``batch_job_id``, ``output_file`` and the
return value's ``results_path`` and ``usage``; in the log, one progress line per change.

``MISTRAL_EXAMPLE_POLL_SECONDS`` sets the seconds between status polls: 60 by default, a
realistic pace for the real API, where a batch job takes minutes to hours. The demo and the
tests, against the local emulator, set it to 1.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import ObjectStoragePath, dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

RESULTS_ROOT = os.environ.get("MISTRAL_EXAMPLE_RESULTS", "file:///tmp")
POLL_SECONDS = float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "60"))

RUN_FILE_NAME = "mistral-batch-chat-{{ run_id | replace(':', '_') | replace('+', '_') }}.jsonl"

QUESTIONS = [
    "What is the best French cheese?",
    "Which wine goes with comte?",
    "Name a river in Burgundy.",
    "How long does brie take to ripen?",
    "What is a good cheese for fondue?",
]


@dag(
    dag_id="example_mistral_batch_chat",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
    doc_md=__doc__,
)
def example_mistral_batch_chat() -> None:
    @task
    def build_requests() -> list[dict[str, Any]]:
        return [
            {
                "custom_id": f"question-{index}",
                "body": {"max_tokens": 64, "messages": [{"role": "user", "content": question}]},
            }
            for index, question in enumerate(QUESTIONS)
        ]

    answer = MistralBatchOperator(
        task_id="answer_questions",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=build_requests(),
        metadata={"purpose": "example"},
        deferrable=True,
        poll_interval=POLL_SECONDS,
        # At most one failed question in five; the final log line says the rule applied.
        max_failed_ratio=0.2,
        # One JSONL per run; a retry of the task overwrites its own run's file.
        results_path=f"{RESULTS_ROOT}/{RUN_FILE_NAME}",
    )

    @task
    def read_answers(summary: dict[str, Any]) -> dict[str, str]:
        import json

        answers = {}
        with ObjectStoragePath(summary["results_path"]).open("r") as lines:
            for line in lines:
                result = json.loads(line)
                if result["ok"]:
                    message = result["response"]["choices"][0]["message"]
                    answers[result["custom_id"]] = message["content"]
                else:
                    answers[result["custom_id"]] = f"(failed: {result['error']})"
        return answers

    read_answers(answer.output)


example_mistral_batch_chat()
