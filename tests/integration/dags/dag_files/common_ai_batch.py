"""Test DAGs: Airflow's common-ai LLMBatchOperator with ``mistral:`` models, on this provider's
adapter (found through its entry point), sync and deferred, with a ``mistral`` and a
``pydanticai`` connection; tests/integration/dags/test_common_ai.py runs them.

Each run gives its results folder as ``result_path`` in the run's conf. The poll interval is
set below common-ai's minimum (30 s) after the operator checked it: the emulator is fast.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from airflow.sdk import dag
from pydantic import BaseModel, Field

try:
    from airflow.providers.common.ai.batch import state
    from airflow.providers.common.ai.operators.llm_batch import LLMBatchOperator
except ImportError:  # without the [common-ai] extra these DAGs do not exist
    LLMBatchOperator = None

MODEL = "mistral:mistral-small-latest"
RESULTS = "{{ dag_run.conf['result_path'] }}"
PROMPTS = ["Review: great food", "Review: cold soup", "Review: fine", "Review: loved it"]


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    confidence: float = Field(ge=0, le=1)


def _fast(op: Any) -> Any:
    op.poll_interval = 1
    return op


if LLMBatchOperator is not None:

    class CrashAfterSubmitOperator(LLMBatchOperator):
        """Dies on its first try after the job was created, before the state recorded it:
        the retry finds only the intent record."""

        def execute(self, context: Any) -> Any:
            if context["ti"].try_number > 1:
                return super().execute(context)
            recorded = state.write_submitted

            def crash(*args: Any, **kwargs: Any) -> None:
                raise RuntimeError("simulated worker crash between submit and state write")

            state.write_submitted = crash
            try:
                return super().execute(context)
            finally:
                state.write_submitted = recorded

    @dag(dag_id="test_common_ai_text", schedule=None, start_date=datetime(2026, 1, 1))
    def test_common_ai_text() -> None:
        # The third request names a model Mistral does not have: an error row, not a failure.
        requests: list[Any] = [*PROMPTS[:2], {"prompt": "x", "model": "mistral:no-such-model"}]
        for task_id, conn_id, deferrable in (
            ("sync_mistral_conn", "mistral_ai", False),
            ("deferred_pydanticai_conn", "pydanticai_mistral", True),
        ):
            _fast(
                LLMBatchOperator(
                    task_id=task_id,
                    requests=requests,
                    result_path=f"{RESULTS}/{task_id}",
                    llm_conn_id=conn_id,
                    model_id=MODEL,
                    system_prompt="Answer in one word.",
                    max_tokens=16,
                    deferrable=deferrable,
                )
            )

    @dag(dag_id="test_common_ai_typed", schedule=None, start_date=datetime(2026, 1, 1))
    def test_common_ai_typed() -> None:
        for task_id, conn_id, deferrable in (
            ("sync_typed", "pydanticai_mistral", False),
            ("deferred_typed", "mistral_ai", True),
        ):
            _fast(
                LLMBatchOperator(
                    task_id=task_id,
                    requests=PROMPTS,
                    result_path=f"{RESULTS}/{task_id}",
                    llm_conn_id=conn_id,
                    model_id=MODEL,
                    system_prompt="Classify the review's sentiment.",
                    output_type=Sentiment,
                    deferrable=deferrable,
                )
            )

    @dag(dag_id="test_common_ai_reattach", schedule=None, start_date=datetime(2026, 1, 1))
    def test_common_ai_reattach() -> None:
        _fast(
            CrashAfterSubmitOperator(
                task_id="crashing",
                requests=PROMPTS,
                result_path=RESULTS,
                llm_conn_id="mistral_ai",
                model_id=MODEL,
                retries=1,
                retry_delay=timedelta(seconds=0),
            )
        )

    @dag(dag_id="test_common_ai_cancel", schedule=None, start_date=datetime(2026, 1, 1))
    def test_common_ai_cancel() -> None:
        _fast(
            LLMBatchOperator(
                task_id="cancelled",
                requests=[f"Review {i}" for i in range(12)],
                result_path=RESULTS,
                llm_conn_id="mistral_ai",
                model_id=MODEL,
            )
        )

    test_common_ai_text()
    test_common_ai_typed()
    test_common_ai_reattach()
    test_common_ai_cancel()
