"""Embeddings from a JSONL file shipped with the DAG, waited for in the worker (blocking).

``embed_documents`` checks every line of ``data/embeddings_requests.jsonl`` before anything is
sent (a bad line fails the task at once, naming the line), uploads the file, makes one batch
job of it and polls it from the worker. ``max_failed_ratio=0.0``: a single failed request
fails the task.

What to look at in the UI, on ``embed_documents``: the **Mistral batch** tab (progress, the
first errors if any, downloads); the log's upload line, progress lines and outcome with its
counts; the XComs ``output_file`` and ``error_file``.

``MISTRAL_EXAMPLE_POLL_SECONDS`` sets the seconds between status polls: 60 by default, a
realistic pace for the real API, where a batch job takes minutes to hours. The demo and the
tests, against the local emulator, set it to 1.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

INPUT = Path(__file__).parent / "data" / "embeddings_requests.jsonl"
POLL_SECONDS = float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "60"))


@dag(
    dag_id="example_mistral_batch_embeddings",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
    doc_md=__doc__,
)
def example_mistral_batch_embeddings() -> None:
    MistralBatchOperator(
        task_id="embed_documents",
        endpoint="/v1/embeddings",
        model="mistral-embed",
        input_path=str(INPUT),
        deferrable=False,
        poll_interval=POLL_SECONDS,
        max_failed_ratio=0.0,
    )


example_mistral_batch_embeddings()
