"""Waiting options no job could satisfy are refused when the DAG is parsed."""

from __future__ import annotations

import pytest

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.operators.cancel import MistralBatchCancelJobOperator
from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_sensor_refuses_a_ratio_outside_zero_to_one(ratio: float) -> None:
    with pytest.raises(MistralBatchInputError, match=r"wait: max_failed_ratio must be between"):
        MistralBatchJobSensor(task_id="wait", job_id="j", max_failed_ratio=ratio)


@pytest.mark.parametrize("interval", [0, -1])
def test_cancel_operator_refuses_a_poll_interval_that_is_not_positive(interval: float) -> None:
    with pytest.raises(MistralBatchInputError, match=r"cancel: poll_interval must be positive"):
        MistralBatchCancelJobOperator(task_id="cancel", job_id="j", poll_interval=interval)


@pytest.mark.parametrize("timeout", [-1, None])
def test_cancel_operator_refuses_a_negative_wait_timeout(timeout: float | None) -> None:
    with pytest.raises(MistralBatchInputError, match=r"cancel: wait_timeout must be 0 or more"):
        MistralBatchCancelJobOperator(task_id="cancel", job_id="j", wait_timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("errors", [0, -1, 2.5, True])
def test_sensor_and_operator_refuse_max_consecutive_errors_below_one(errors: object) -> None:
    pattern = r"max_consecutive_errors must be a whole number >= 1"
    with pytest.raises(MistralBatchInputError, match=rf"wait: {pattern}"):
        MistralBatchJobSensor(task_id="wait", job_id="j", max_consecutive_errors=errors)  # type: ignore[arg-type]

    class Fragile(MistralBatchOperator):
        max_consecutive_errors = errors  # type: ignore[assignment]

    with pytest.raises(MistralBatchInputError, match=rf"batch: {pattern}"):
        Fragile(task_id="batch", endpoint="/v1/embeddings", input_files=["f"])


@pytest.mark.parametrize("interval", ["30", float("inf"), float("nan"), True])
def test_a_poll_interval_that_is_not_a_finite_number_is_refused_at_parse(interval: object) -> None:
    for build in (
        lambda: MistralBatchOperator(
            task_id="batch", endpoint="/v1/embeddings", input_files=["f"], poll_interval=interval
        ),
        lambda: MistralBatchCancelJobOperator(task_id="batch", job_id="j", poll_interval=interval),
    ):
        with pytest.raises(MistralBatchInputError) as caught:
            build()
        assert str(caught.value) == f"batch: poll_interval must be positive, got {interval!r}"


def test_a_poll_interval_of_none_is_refused_no_silent_schedule() -> None:
    # poll_interval=None once switched to another schedule; now there is one, always.
    with pytest.raises(MistralBatchInputError) as caught:
        MistralBatchOperator(
            task_id="batch", endpoint="/v1/embeddings", input_files=["f"], poll_interval=None
        )
    assert str(caught.value) == "batch: poll_interval must be positive, got None"


@pytest.mark.parametrize("timeout", ["600", float("inf")])
def test_a_wait_timeout_that_is_not_a_finite_number_is_refused_at_parse(timeout: object) -> None:
    with pytest.raises(MistralBatchInputError, match=r"batch: wait_timeout must be 0 or more"):
        MistralBatchCancelJobOperator(task_id="batch", job_id="j", wait_timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio", ["0.1", float("nan")])
def test_a_max_failed_ratio_that_is_not_a_number_is_refused_at_parse(ratio: object) -> None:
    with pytest.raises(MistralBatchInputError, match=r"max_failed_ratio must be between"):
        MistralBatchJobSensor(task_id="wait", job_id="j", max_failed_ratio=ratio)


def test_none_is_refused_where_a_number_is_needed_by_every_waiting_face() -> None:
    # None means "any share" only for max_failed_ratio; elsewhere it is refused at parse.
    with pytest.raises(MistralBatchInputError) as caught:
        MistralBatchCancelJobOperator(task_id="cancel", job_id="j", poll_interval=None)  # type: ignore[arg-type]
    assert str(caught.value) == "cancel: poll_interval must be positive, got None"
    with pytest.raises(MistralBatchInputError) as caught:
        MistralBatchJobSensor(task_id="wait", job_id="j", max_consecutive_errors=None)  # type: ignore[arg-type]
    assert str(caught.value) == "wait: max_consecutive_errors must be a whole number >= 1, got None"
    assert (
        MistralBatchJobSensor(task_id="ok", job_id="j", max_failed_ratio=None).max_failed_ratio
        is None
    )
