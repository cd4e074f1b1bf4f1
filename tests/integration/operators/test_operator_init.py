"""MistralBatchOperator's constructor: argument checks, template fields, defaults."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.links import MistralBatchJobLink
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.operators.cancel import MistralBatchCancelJobOperator
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
        ({"input_files": ["f"], "requests": chat_requests(1)}, "input_files, requests"),
        ({"requests": chat_requests(1), "input_path": "/tmp/x.jsonl"}, "requests, input_path"),
        (
            {"input_files": ["f"], "requests": chat_requests(1), "input_path": "/tmp/x.jsonl"},
            "input_files, requests, input_path",
        ),
    ],
)
def test_two_inputs_are_refused_at_parse_and_the_message_lists_what_was_given(
    inputs: dict[str, Any], named: str
) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        _op(**inputs)
    assert str(info.value) == (
        f"batch: give exactly one of input_files, requests and input_path (got {named})"
    )


def test_no_input_fails_at_parse() -> None:
    with pytest.raises(MistralBatchInputError) as info:
        _op()
    assert str(info.value) == (
        "batch: give exactly one of input_files, requests and input_path (got none)"
    )


class _RunTimeInput(MistralBatchOperator):
    input_at_run_time = True


def test_a_subclass_may_take_its_input_at_run_time() -> None:
    # A TaskFlow function's requests exist only at run time; execute refuses a task without
    # any (tests/integration/operators/test_operator_input.py).
    op = _RunTimeInput(task_id="batch", endpoint=CHAT)
    op.requests = chat_requests(1)
    assert op._options(rendered=True).input_field == "requests"
    op.requests = None
    with pytest.raises(MistralBatchInputError, match=r"\(got none\)"):
        op._options(rendered=True)


def test_reserved_metadata_keys_fail_at_parse_even_with_templated_values() -> None:
    # Airflow renders a dict's values, never its keys.
    with pytest.raises(
        MistralBatchInputError, match="reserved for this provider: \\['airflow_x'\\]"
    ):
        _op(requests=chat_requests(1), metadata={"k": "{{ ds }}", "airflow_x": "y"})


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


@pytest.mark.parametrize(
    "timeout",
    [
        0,
        -3600,
        169 * 3600,
        5400,
        1.5,
        24,
        True,
        "86400",
        None,
        float("inf"),
        timedelta(minutes=90),
        timedelta(hours=169),
        timedelta(0),
    ],
)
def test_a_timeout_other_than_whole_hours_from_1_to_168_is_refused(timeout: object) -> None:
    with pytest.raises(
        MistralBatchInputError,
        match=r"^batch: timeout must be a whole number of hours from 1 to 168 ",
    ) as info:
        _op(input_files=["f"], timeout=timeout)
    assert str(info.value).endswith(f"got {timeout!r}")


@pytest.mark.parametrize(
    ("timeout", "hours"),
    [(timedelta(hours=1), 1), (3600, 1), (7200.0, 2), (timedelta(days=7), 168), (604800, 168)],
)
def test_a_timeout_in_whole_hours_is_sent_as_timeout_hours(timeout: object, hours: int) -> None:
    options = _op(input_files=["f"], timeout=timeout)._options(rendered=True)
    assert options.timeout_hours == hours
    # The wait gives up one hour after the job's own timeout.
    assert options.wait_seconds == (hours + 1) * 3600.0


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("timeout_hours", "use timeout (a timedelta or seconds"),
        ("wait_timeout", "use timeout: the wait ends one hour after the job's own timeout"),
        ("cancel_on_deadline", "the task always cancels the job when the wait's deadline"),
        ("agent_id", "use job_kwargs={'agent_id': ...}"),
        ("reattach_namespace", "the connection's extra field 'reattach_namespace'"),
        ("results_include_request", "MistralBatchResultsOperator(results_include_request=True)"),
        ("max_consecutive_errors", "the class attribute max_consecutive_errors"),
        ("max_requests_per_job", "the class attribute max_requests_per_job"),
    ],
)
def test_an_argument_of_an_earlier_release_is_refused_with_what_replaced_it(
    name: str, replacement: str
) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        _op(input_files=["f"], **{name: 1})
    message = str(info.value)
    assert message.startswith(f"batch: MistralBatchOperator no longer takes {name} (")
    assert replacement in message


def test_the_submit_operator_has_at_most_20_parameters() -> None:
    parameters = [
        name
        for name, parameter in inspect.signature(MistralBatchOperator.__init__).parameters.items()
        if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert len(parameters) <= 20, parameters


def test_settings_that_are_class_attributes_are_checked_from_a_subclass_at_parse() -> None:
    class Unbounded(MistralBatchOperator):
        max_consecutive_errors = 0

    with pytest.raises(MistralBatchInputError, match=r"^batch: max_consecutive_errors must be"):
        Unbounded(task_id="batch", endpoint=CHAT, input_files=["f"])


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
        "job_kwargs",
        "results_path",
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


def test_defaults() -> None:
    op = _op(input_files=["f"])
    assert op.poll_interval == 30.0
    assert op.max_poll_interval == 300.0
    assert op.max_consecutive_errors == 5
    assert op.max_requests_per_job is None
    assert op.mistral_conn_id == "mistral_default"
    assert op.timeout == timedelta(hours=24)
    assert op.job_kwargs is None
    assert op.wait_for_completion is True
    assert op.cancel_on_kill is True
    assert op.force_new_job is False
    assert op.max_failed_ratio == 0.0  # any failed request fails the task
    options = op._options(rendered=True)
    assert (options.timeout_hours, options.wait_seconds) == (24, 25 * 3600.0)


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


def test_the_cancel_and_results_operators_still_import_from_the_old_module() -> None:
    import warnings

    from airflow_provider_mistral_batch.operators import batch, cancel, results

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at parse cost
        from airflow_provider_mistral_batch.operators.batch import (
            MistralBatchCancelJobOperator as OldCancel,
        )
        from airflow_provider_mistral_batch.operators.batch import (
            MistralBatchResultsOperator as OldResults,
        )
    assert OldCancel is cancel.MistralBatchCancelJobOperator
    assert OldResults is results.MistralBatchResultsOperator
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        batch.Nope  # noqa: B018
