"""Embeddings from a JSONL file shipped with the DAG, waited for in the worker (blocking)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

INPUT = Path(__file__).parent / "data" / "embeddings_requests.jsonl"


@dag(
    dag_id="example_mistral_batch_embeddings",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
)
def example_mistral_batch_embeddings() -> None:
    MistralBatchOperator(
        task_id="embed_documents",
        endpoint="/v1/embeddings",
        model="mistral-embed",
        input_path=str(INPUT),
        deferrable=False,
        poll_interval=1,
        max_failed_ratio=0.0,
    )


example_mistral_batch_embeddings()
