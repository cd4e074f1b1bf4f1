"""MistralBatchOperator's constructor: argument checks, template fields, defaults."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.links import MistralBatchJobLink
from airflow_provider_mistral_batch.operators.batch import (
    MistralBatchCancelJobOperator,
    MistralBatchOperator,
)
from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor
from airflow_provider_mistral_batch.utils.compat import conf
from tests.integration.operators.support import CHAT, chat_requests


def _op(**kwargs: Any) -> MistralBatchOperator:
    kwargs.setdefault("task_id", "batch")
    kwargs.setdefault("endpoint", CHAT)
    return MistralBatchOperator(**kwargs)


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({}, "none"),
        ({"input_files": ["f"], "requests": chat_requests(1)}, "input_files, requests"),
        ({"requests": chat_requests(1), "input_path": "/tmp/x.jsonl"}, "requests, input_path"),
        (
            {"input_files": ["f"], "requests": chat_requests(1), "input_path": "/tmp/x.jsonl"},
            "input_files, requests, input_path",
        ),
    ],
)
def test_exactly_one_input_is_required_and_the_message_lists_what_was_given(
    inputs: dict[str, Any], named: str
) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        _op(**inputs)
    assert str(info.value) == (
        f"batch: give exactly one of input_files, requests and input_path (got {named})"
    )


@pytest.mark.parametrize(
    "inputs",
    [{"input_files": ["f"]}, {"requests": chat_requests(1)}, {"input_path": "/tmp/x.jsonl"}],
)
def test_each_single_input_is_accepted(inputs: dict[str, Any]) -> None:
    op = _op(**inputs)
    assert op.job_id is None


def test_an_empty_list_still_counts_as_given() -> None:
    # None means "not given"; an empty list is given (and refused later, at execute).
    op = _op(requests=[])
    assert op.requests == []


@pytest.mark.parametrize("hours", [0, -1, 169, 1000, 1.5, 24.0, True, "24", None])
def test_timeout_hours_other_than_a_whole_1_to_168_is_refused(hours: object) -> None:
    with pytest.raises(
        MistralBatchInputError,
        match=r"^batch: timeout_hours must be a whole number of hours between 1 and 168",
    ) as info:
        _op(input_files=["f"], timeout_hours=hours)
    assert str(info.value).endswith(f"got {hours!r}")


@pytest.mark.parametrize("hours", [1, 24, 168])
def test_timeout_hours_bounds_are_accepted(hours: int) -> None:
    assert _op(input_files=["f"], timeout_hours=hours).timeout_hours == hours


@pytest.mark.parametrize("ratio", [-0.01, 1.01, 2])
def test_max_failed_ratio_outside_0_to_1_is_refused(ratio: float) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        _op(input_files=["f"], max_failed_ratio=ratio)
    assert str(info.value) == (f"batch: max_failed_ratio must be between 0.0 and 1.0, got {ratio}")


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0, None])
def test_max_failed_ratio_bounds_are_accepted(ratio: float | None) -> None:
    assert _op(input_files=["f"], max_failed_ratio=ratio).max_failed_ratio == ratio


@pytest.mark.parametrize("interval", [0, 0.0, -1])
def test_poll_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        _op(input_files=["f"], poll_interval=interval)
    assert str(info.value) == f"batch: poll_interval must be positive, got {interval}"


def test_template_fields() -> None:
    fields = set(MistralBatchOperator.template_fields)
    assert {
        "requests",
        "input_files",
        "input_path",
        "endpoint",
        "model",
        "metadata",
        "agent_id",
    } <= fields
    # Never a secret or a connection id in a template field.
    assert "mistral_conn_id" not in fields
    assert MistralBatchCancelJobOperator.template_fields == ("job_id",)
    assert MistralBatchJobSensor.template_fields == ("job_id",)


def test_default_deferrable_comes_from_the_operators_config() -> None:
    configured = conf.getboolean("operators", "default_deferrable", fallback=False)
    assert configured is False
    for cls in (MistralBatchOperator, MistralBatchJobSensor):
        default = inspect.signature(cls.__init__).parameters["deferrable"].default
        assert default is configured
    assert _op(input_files=["f"]).deferrable is False
    assert _op(input_files=["f"], deferrable=True).deferrable is True


def test_defaults_and_wait_timeout_as_timedelta() -> None:
    op = _op(input_files=["f"], wait_timeout=timedelta(minutes=2), poll_interval=3)
    assert op.wait_timeout == 120.0
    assert op.poll_interval == 3.0
    assert op.mistral_conn_id == "mistral_default"
    assert op.timeout_hours == 24
    assert op.wait_for_completion is True
    assert op.cancel_on_kill is True
    assert op.cancel_on_deadline is True
    assert op.force_new_job is False
    assert op.max_failed_ratio == 0.0  # any failed request fails the task
    # No wait_timeout: the job's own timeout plus one hour.
    assert _op(input_files=["f"], timeout_hours=2)._wait_seconds() == 3 * 3600.0
    assert _op(input_files=["f"], wait_timeout=5)._wait_seconds() == 5.0


def test_operators_and_sensor_carry_the_console_link() -> None:
    for cls in (MistralBatchOperator, MistralBatchJobSensor):
        links = cls.operator_extra_links
        assert any(isinstance(link, MistralBatchJobLink) for link in links)


def test_cancel_operator_defaults() -> None:
    op = MistralBatchCancelJobOperator(
        task_id="cancel", job_id="j", wait_timeout=timedelta(seconds=90)
    )
    assert op.wait_timeout == 90.0
    assert op.wait_for_cancellation is False
    assert op.mistral_conn_id == "mistral_default"
