"""The submit operator's options, checked in one place: when the DAG file is parsed (the
literal values) and again once the task has rendered them, before anything is uploaded.

Nothing here needs the input itself: a task may build its requests at run time (a TaskFlow
function), so the parse-time check accepts an operator with no input yet. A DAG file loads this
module, so it stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from pydantic import ValidationError

from airflow_provider_mistral_batch.batch.endpoint import TEXT_ENDPOINTS, check_endpoint
from airflow_provider_mistral_batch.batch.output_spec import OutputSpec, output_spec
from airflow_provider_mistral_batch.batch.wait_options import (
    check_wait_options,
    is_finite_number,
    is_whole_number,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError, validation_problems
from airflow_provider_mistral_batch.models import (
    DEFAULT_TIMEOUT_HOURS,
    MAX_REQUESTS_PER_JOB,
    TIMEOUT_HOURS_MAX,
    TIMEOUT_HOURS_MIN,
    ApiEndpoint,
    CreateBatchJobRequest,
)

#: The default ``timeout``: Mistral's own default job timeout.
DEFAULT_TIMEOUT: Final = timedelta(hours=DEFAULT_TIMEOUT_HOURS)
#: Extra time past the job's own timeout to wait for Mistral to report it; when it passes too,
#: the task cancels the job and fails.
WAIT_MARGIN: Final = timedelta(hours=1)
#: The operator's inputs, of which a run needs exactly one.
INPUT_FIELDS: Final = ("input_files", "requests", "input_path")
#: Keys of the create request the operator sets itself: ``job_kwargs`` may not give them.
OPERATOR_JOB_KEYS: Final = frozenset(
    {"endpoint", "input_files", "requests", "model", "metadata", "timeout_hours"}
)
#: Arguments of earlier releases, and what replaced each.
REPLACED_ARGUMENTS: Final = {
    "timeout_hours": "use timeout (a timedelta or seconds, whole hours, e.g. timedelta(hours=24))",
    "wait_timeout": (
        "use timeout: the wait ends one hour after the job's own timeout (the task then cancels "
        "the job and fails); Airflow's execution_timeout still bounds one try"
    ),
    "cancel_on_deadline": (
        "leave it out: the task always cancels the job when the wait's deadline (timeout plus "
        "one hour) passes"
    ),
    "agent_id": "use job_kwargs={'agent_id': ...}",
    "reattach_namespace": "set the connection's extra field 'reattach_namespace'",
    "results_include_request": (
        "use MistralBatchResultsOperator(results_include_request=True) downstream (only it has "
        "this option now)"
    ),
    "max_consecutive_errors": (
        "set the class attribute max_consecutive_errors on a subclass of the operator"
    ),
    "max_requests_per_job": (
        "set the class attribute max_requests_per_job on a subclass of the operator"
    ),
}


class _NotRendered:
    """The value of a template field that only a run knows (a template, an XComArg)."""

    def __repr__(self) -> str:
        return "NOT_RENDERED"


#: Stands for a value the parse-time check cannot know: its checks wait for the run.
NOT_RENDERED: Final = _NotRendered()


@dataclass(frozen=True)
class SubmitOptions:
    """A submit's job settings, checked: everything the create request carries but the input.

    :param input_field: which of ``input_files``, ``requests`` and ``input_path`` holds the
        input; None when the parse-time check saw none (a run must have one).
    :param endpoint: the API endpoint (possibly one this release does not know: see
        ``ApiEndpoint.is_known``); None when not rendered yet.
    :param model: the model of every request, or None.
    :param metadata: the user's metadata of the job (no ``airflow_`` keys).
    :param timeout_hours: the job's timeout sent to Mistral.
    :param job_kwargs: more fields of the create request (e.g. ``agent_id``).
    :param output: what each answer must be (``output_type``'s spec; text by default).
    """

    input_field: str | None
    endpoint: ApiEndpoint | None
    model: str | None
    metadata: dict[str, str]
    timeout_hours: int
    job_kwargs: dict[str, Any]
    output: OutputSpec

    @property
    def wait_seconds(self) -> float:
        """How long the task waits for the job: its timeout plus :data:`WAIT_MARGIN`."""
        return self.timeout_hours * 3600.0 + WAIT_MARGIN.total_seconds()


def refuse_replaced_arguments(task_id: Any, kwargs: Mapping[str, Any]) -> None:
    """Refuse, with what replaced it, an argument an earlier release of the operator took."""
    old = [name for name in REPLACED_ARGUMENTS if name in kwargs]
    if old:
        hints = "; ".join(f"{name}: {REPLACED_ARGUMENTS[name]}" for name in old)
        raise MistralBatchInputError(
            f"{task_id}: MistralBatchOperator no longer takes {', '.join(old)} ({hints})"
        )


def timeout_hours_of(timeout: Any) -> int:
    """``timeout`` (a ``timedelta`` or seconds) as the whole hours Mistral takes, 1 to 168."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if is_finite_number(seconds) and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        if TIMEOUT_HOURS_MIN <= hours <= TIMEOUT_HOURS_MAX:
            return hours
    raise MistralBatchInputError(
        f"timeout must be a whole number of hours from {TIMEOUT_HOURS_MIN} to "
        f"{TIMEOUT_HOURS_MAX} (a timedelta, or seconds: 3600 to 604800 in steps of 3600), "
        f"got {timeout!r}"
    )


def check_submit_options(
    *,
    inputs: Mapping[str, Any],
    endpoint: Any,
    model: Any,
    metadata: Any,
    timeout: Any,
    job_kwargs: Any,
    results_path: Any,
    wait_for_completion: bool,
    max_failed_ratio: Any,
    poll_interval: Any,
    max_consecutive_errors: Any,
    max_requests_per_job: Any,
    input_required: bool,
    output_type: Any = str,
) -> SubmitOptions:
    """Check the options of one submit and return its job settings.

    Called when the DAG is parsed with the literal values (:data:`NOT_RENDERED` for a value
    only the run knows, ``input_required=False``), and by the run with every value rendered.
    Errors name the option but not the task (the caller adds it).

    :param inputs: ``input_files``, ``requests`` and ``input_path`` by name; None: not given.
    :param output_type: what each answer must be (never templated): ``str`` for text, else a
        type pydantic makes a JSON schema of, asked for with ``response_format`` (chat only).
    """
    given = [name for name in INPUT_FIELDS if inputs.get(name) is not None]
    if len(given) > 1 or (input_required and not given):
        raise MistralBatchInputError(
            f"give exactly one of {', '.join(INPUT_FIELDS[:-1])} and {INPUT_FIELDS[-1]} "
            f"(got {', '.join(given) or 'none'})"
        )
    timeout_hours = timeout_hours_of(timeout)
    if max_requests_per_job is not None and not (
        is_whole_number(max_requests_per_job) and 1 <= max_requests_per_job <= MAX_REQUESTS_PER_JOB
    ):
        raise MistralBatchInputError(
            f"max_requests_per_job must be a whole number from 1 to {MAX_REQUESTS_PER_JOB:,}, "
            f"got {max_requests_per_job!r}"
        )
    if results_path is not None and not wait_for_completion:
        raise MistralBatchInputError(
            "results_path needs wait_for_completion=True (the results exist only once the job "
            "ended); use MistralBatchResultsOperator downstream"
        )
    check_wait_options(
        "",
        max_failed_ratio=max_failed_ratio,
        poll_interval=poll_interval,
        max_consecutive_errors=max_consecutive_errors,
    )
    checked_endpoint = None if endpoint is NOT_RENDERED else check_endpoint(_text(endpoint))
    output = output_spec(output_type)
    if output.structured and checked_endpoint not in (None, ApiEndpoint.CHAT_COMPLETIONS):
        raise MistralBatchInputError(
            f"output_type={_type_name(output_type)} asks for JSON answers with "
            f"response_format, which only {ApiEndpoint.CHAT_COMPLETIONS.value} takes; endpoint "
            f"{checked_endpoint} does not (leave output_type out for text answers)"
        )
    if output.structured and (results_path is None or not wait_for_completion):
        # The rows (and their invalid_output count) are made only when results are written.
        name = _type_name(output_type)
        needs = "" if wait_for_completion else " and wait_for_completion=True"
        raise MistralBatchInputError(
            f"output_type={name} checks each answer as the results are written: give "
            f"results_path=...{needs} (without results, no answer would be checked)"
        )
    user_metadata = {} if metadata is NOT_RENDERED else _checked_metadata(metadata)
    extra = {} if job_kwargs is NOT_RENDERED else _checked_job_kwargs(job_kwargs)
    request = {
        "endpoint": checked_endpoint or ApiEndpoint.CHAT_COMPLETIONS,
        "input_files": ["check"],
        "model": None if model is NOT_RENDERED else model,
        "metadata": user_metadata or None,
        "timeout_hours": timeout_hours,
        **extra,
    }
    try:
        CreateBatchJobRequest.model_validate(request)
    except ValidationError as exc:
        raise MistralBatchInputError(f"invalid job options: {validation_problems(exc)}") from None
    return SubmitOptions(
        input_field=given[0] if given else None,
        endpoint=checked_endpoint,
        model=None if model is NOT_RENDERED else model,
        metadata=user_metadata,
        timeout_hours=timeout_hours,
        job_kwargs=extra,
        output=output,
    )


def _type_name(output_type: Any) -> str:
    """A class by its name (``Person``), anything else as written (``list[int]``)."""
    return output_type.__name__ if isinstance(output_type, type) else repr(output_type)


def _text(endpoint: Any) -> str:
    if not isinstance(endpoint, str):
        raise MistralBatchInputError(
            f"endpoint must be a string such as '/v1/chat/completions', got {endpoint!r:.100}"
        )
    return endpoint


def _checked_metadata(metadata: Any) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise MistralBatchInputError(
            f"metadata must be a mapping of string keys to string values, got "
            f"{type(metadata).__name__} {metadata!r:.100}"
        )
    check_metadata_keys(metadata)
    return dict(metadata)


def check_metadata_keys(metadata: Mapping[Any, Any]) -> None:
    """Refuse the metadata keys this provider reserves (``airflow_...``)."""
    reserved = sorted(str(key) for key in metadata if str(key).startswith("airflow_"))
    if reserved:
        raise MistralBatchInputError(
            f"metadata keys starting with 'airflow_' are reserved for this provider: {reserved}"
        )


def _checked_job_kwargs(job_kwargs: Any) -> dict[str, Any]:
    """``job_kwargs`` as a dict of create-request fields the operator does not set itself."""
    if job_kwargs is None:
        return {}
    if not isinstance(job_kwargs, Mapping):
        raise MistralBatchInputError(
            f"job_kwargs must be a mapping of create-request fields, got "
            f"{type(job_kwargs).__name__} {job_kwargs!r:.100}"
        )
    owned = sorted(str(key) for key in job_kwargs if key in OPERATOR_JOB_KEYS)
    if owned:
        raise MistralBatchInputError(
            f"job_kwargs may not set {', '.join(owned)}: the operator sets "
            f"{', '.join(sorted(OPERATOR_JOB_KEYS))} from its own arguments (timeout_hours "
            "from timeout)"
        )
    known = set(CreateBatchJobRequest.model_fields) - OPERATOR_JOB_KEYS
    unknown = sorted(str(key) for key in job_kwargs if key not in known)
    if unknown:
        raise MistralBatchInputError(
            f"job_kwargs has {', '.join(unknown)}, which no batch job takes; the fields it "
            f"may set: {', '.join(sorted(known))}"
        )
    return dict(job_kwargs)


#: Most resubmit rounds a task may run: each is one more job, and one more wait.
MAX_RETRY_ROUNDS: Final = 10


def check_retry_options(
    retry_failed_requests: Any,
    retry_invalid_output: Any,
    wait_for_completion: bool,
    *,
    output: OutputSpec | None = None,
    endpoint: ApiEndpoint | None = None,
) -> None:
    """Check the resubmit options (see :mod:`.resubmit`); errors name the option, not the task.

    :param output: the checked ``output_type`` (None: not known yet).
    :param endpoint: the checked endpoint (None: not rendered yet).
    """
    if not (
        is_whole_number(retry_failed_requests) and 0 <= retry_failed_requests <= MAX_RETRY_ROUNDS
    ):
        raise MistralBatchInputError(
            f"retry_failed_requests must be a whole number from 0 to {MAX_RETRY_ROUNDS}, "
            f"got {retry_failed_requests!r}"
        )
    if not isinstance(retry_invalid_output, bool):
        raise MistralBatchInputError(
            f"retry_invalid_output must be True or False, got {retry_invalid_output!r}"
        )
    if retry_invalid_output and not retry_failed_requests:
        raise MistralBatchInputError(
            "retry_invalid_output=True sends invalid answers again within the rounds of "
            "retry_failed_requests, which is 0: set retry_failed_requests too"
        )
    if retry_failed_requests and not wait_for_completion:
        raise MistralBatchInputError(
            "retry_failed_requests needs wait_for_completion=True (requests are sent again "
            "once their job ended)"
        )
    if retry_invalid_output and endpoint is not None and endpoint not in TEXT_ENDPOINTS:
        raise MistralBatchInputError(
            f"retry_invalid_output=True sends again the answers whose text does not validate "
            f"against output_type, but the answers of endpoint {endpoint} have no text (only "
            f"{' and '.join(sorted(TEXT_ENDPOINTS))} answers do): leave it out"
        )
    if retry_invalid_output and output is not None and not output.structured:
        raise MistralBatchInputError(
            "retry_invalid_output=True sends again the answers that do not validate against "
            "output_type, but output_type is str (text), which every answer is: give "
            "output_type a pydantic model, or leave retry_invalid_output out"
        )


__all__ = [
    "DEFAULT_TIMEOUT",
    "INPUT_FIELDS",
    "MAX_RETRY_ROUNDS",
    "NOT_RENDERED",
    "OPERATOR_JOB_KEYS",
    "REPLACED_ARGUMENTS",
    "WAIT_MARGIN",
    "SubmitOptions",
    "check_retry_options",
    "check_submit_options",
    "refuse_replaced_arguments",
    "timeout_hours_of",
]
