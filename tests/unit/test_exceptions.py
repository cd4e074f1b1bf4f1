"""The provider's errors: their classes and what survives pickling (which of them stop
retries is tested under Airflow's task runner: tests/integration/dags/test_error_retries.py)."""

from __future__ import annotations

import pickle

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchInputError,
    MistralBatchJobError,
    MistralBatchJobFatalError,
    MistralServerError,
)


def test_input_errors_are_value_errors_and_job_fatal_errors_are_job_errors() -> None:
    assert isinstance(MistralBatchInputError("bad"), ValueError)
    assert isinstance(MistralBatchJobFatalError("cancelled"), MistralBatchJobError)


def test_a_note_is_added_to_the_message_and_survives_pickling() -> None:
    error = MistralServerError(
        503, "down", method="POST", path="/v1/files", request_id="r1", retry_after=2.0
    )
    noted = error.with_note("The file may or may not have been uploaded.")
    assert type(noted) is MistralServerError
    assert str(noted) == (
        "Mistral API error 503 on POST /v1/files: down (request id r1) "
        "The file may or may not have been uploaded."
    )
    again = pickle.loads(pickle.dumps(noted))
    assert type(again) is MistralServerError
    assert str(again) == str(noted)
    assert (again.note, again.retry_after, again.request_id) == (noted.note, 2.0, "r1")


def test_without_a_note_the_message_is_unchanged() -> None:
    assert str(MistralAPIError(400, "bad", method="GET", path="/v1/x")) == (
        "Mistral API error 400 on GET /v1/x: bad"
    )
