"""``@task.mistral_batch``: a TaskFlow function returns a batch's requests, or the path of a
JSONL file, and the task runs them as one :class:`MistralBatchOperator` would.

The provider registers the decorator (``task-decorators`` in its provider info), so
``@task.mistral_batch(...)`` works wherever the provider is installed; :func:`mistral_batch_task`
is the same decorator for a direct import. A DAG file that uses it loads no more than one that
uses the operator.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, ClassVar, Final

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory

from airflow_provider_mistral_batch.batch.submit_options import INPUT_FIELDS
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.models import ApiEndpoint
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.utils.paths import is_object_storage
from airflow_provider_mistral_batch.utils.wording import kind_of

if TYPE_CHECKING:
    from airflow.sdk import Context

#: What the decorated function must return, as error messages say it.
EXPECTED_RETURN: Final = (
    "a list of requests ({'custom_id', 'body'} objects) or of prompt strings, or the path of "
    "a JSONL file"
)
_NOTHING: Final = object()


class MistralBatchDecoratedOperator(DecoratedOperator, MistralBatchOperator):
    """The task of ``@task.mistral_batch``: a :class:`MistralBatchOperator` whose input is what
    its function returns.

    The function runs once per try, in ``execute``: a task resumed after a deferral goes
    straight to ``execute_complete`` (the job exists; its input is no longer needed), and a
    retry runs it again and reattaches to the earlier try's job when the function returned the
    same input. The function must therefore be deterministic: an input that differs (a
    timestamp in a prompt) makes a new job, paid again. What it returns is never rendered as
    a template; the operator's other template fields are.

    :param python_callable: the function; it returns a list (or an iterator) of request objects
        ``{"custom_id", "body"}``, or of prompt strings, each made into the chat request
        ``{"messages": [{"role": "user", "content": prompt}]}`` with its 0-based position as
        ``custom_id`` (chat completions only); or a path (``str``, ``os.PathLike`` or
        ``ObjectStoragePath``) of a JSONL file, taken as ``input_path``.
    :param op_args: positional arguments of the function (templated).
    :param op_kwargs: keyword arguments of the function (templated).
    :param endpoint: API endpoint of the requests; default ``/v1/chat/completions``.

    Every other argument is :class:`MistralBatchOperator`'s (``model``, ``results_path``,
    ``deferrable``, ...), but its inputs (``requests``, ``input_path``, ``input_files``):
    the function gives the input.
    """

    template_fields: Sequence[str] = tuple(
        dict.fromkeys(
            (
                *DecoratedOperator.template_fields,
                *(f for f in MistralBatchOperator.template_fields if f not in INPUT_FIELDS),
            )
        )
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **{
            name: renderer
            for name, renderer in MistralBatchOperator.template_fields_renderers.items()
            if name not in INPUT_FIELDS
        },
    }
    custom_operator_name: str = "@task.mistral_batch"
    input_at_run_time = True

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        endpoint: str = ApiEndpoint.CHAT_COMPLETIONS.value,
        **kwargs: Any,
    ) -> None:
        given = [name for name in INPUT_FIELDS if name in kwargs]
        if given:
            raise MistralBatchInputError(
                f"{kwargs.get('task_id')}: @task.mistral_batch takes no {', '.join(given)}: "
                f"its function returns the input ({EXPECTED_RETURN})"
            )
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            endpoint=endpoint,
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        """Run the function, take what it returned as the input, then run the batch."""
        returned = self._call_function(context)
        try:
            field, value, described = input_of(returned, endpoint=self.endpoint)
        except MistralBatchInputError as exc:
            from airflow_provider_mistral_batch.batch.manifest import XCOM_INPUT_ERROR

            # As the operator does for its own input errors: the UI's tab shows it.
            context["ti"].xcom_push(key=XCOM_INPUT_ERROR, value=str(exc)[:2000])
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from None
        self.log.info("The function returned %s", described)
        setattr(self, field, value)
        # DecoratedOperator.execute (inlets from Asset arguments), then the operator's.
        return super().execute(context)

    def _call_function(self, context: Context) -> Any:
        from airflow.sdk.definitions.context import context_merge

        try:
            from airflow.sdk.bases.decorator import determine_kwargs
        except ImportError:  # Airflow 3.1
            from airflow.utils.operator_helpers import (  # type: ignore[attr-defined,no-redef,unused-ignore]
                determine_kwargs,
            )

        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        return self.python_callable(*self.op_args, **kwargs)


def input_of(returned: Any, *, endpoint: Any) -> tuple[str, Any, str]:
    """The operator's input for what a decorated function returned: the input field's name,
    its value and a description for the log.

    A path is ``input_path``; a list or an iterator of request objects is ``requests`` as it
    is; one of prompt strings becomes chat requests (made as they are read), with their 0-based
    positions as ``custom_id``.

    :param endpoint: the task's endpoint, rendered (prompt strings need chat completions).
    :raises MistralBatchInputError: for anything else, or no requests at all.
    """
    if isinstance(returned, str | os.PathLike) or is_object_storage(returned):
        if isinstance(returned, str) and not returned.strip():
            raise MistralBatchInputError(
                f"the function returned an empty string; return {EXPECTED_RETURN}"
            )
        return "input_path", returned, f"the path {returned}"
    if isinstance(returned, bytes | Mapping) or not isinstance(returned, Sequence | Iterator):
        hint = " (one request? return a list of them)" if isinstance(returned, Mapping) else ""
        raise MistralBatchInputError(
            f"the function returned {_kind(returned)}{hint}; return {EXPECTED_RETURN}"
        )
    items = iter(returned)
    first = next(items, _NOTHING)
    if first is _NOTHING:
        empty = "an empty list" if isinstance(returned, Sequence) else "an empty iterator"
        raise MistralBatchInputError(
            f"the function returned no requests ({empty}); a batch job needs at least one"
        )
    rest = returned if isinstance(returned, Sequence) else chain([first], items)
    count = f"{len(returned):,}" if isinstance(returned, Sequence) else "an iterator of"
    if not isinstance(first, str):
        return "requests", rest, f"{count} requests"
    if str(endpoint) != ApiEndpoint.CHAT_COMPLETIONS:
        raise MistralBatchInputError(
            f"the function returned prompt strings, which make chat requests, but the endpoint "
            f"is {endpoint!r}: return request objects ({{'custom_id', 'body'}}) for it"
        )
    described = f"{count} prompt strings, sent as chat requests with custom_id '0', '1', ..."
    return "requests", _chat_requests(rest), described


def _chat_requests(prompts: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """One chat request per prompt string, its position its ``custom_id``."""
    for position, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise MistralBatchInputError(
                f"the function returned a prompt string at position 0 but {_kind(prompt)} at "
                f"position {position}: return prompt strings only, or request objects only"
            )
        body = {"messages": [{"role": "user", "content": prompt}]}
        yield {"custom_id": str(position), "body": body}


def _kind(value: Any) -> str:
    """How a returned value reads in an error: ``a number``, ``None``, ``a set``..."""
    if value is None:
        return "None"
    if isinstance(value, bytes):
        return "bytes"
    kind = kind_of(value)
    return f"a {kind}" if kind == type(value).__name__ else kind


def mistral_batch_task(
    python_callable: Callable[..., Any] | None = None, **kwargs: Any
) -> TaskDecorator:
    """Make a function that returns a batch's requests into a Mistral batch task.

    Registered as ``@task.mistral_batch``; the arguments are
    :class:`MistralBatchDecoratedOperator`'s. The task's XCom is the operator's summary, one
    value (the function's return annotation describes the input, so it never implies
    ``multiple_outputs``)::

        @task.mistral_batch(model="mistral-small-latest", results_path="/data/answers.jsonl")
        def questions(topics: list[str]) -> list[str]:
            return [f"Say one fact about {topic}." for topic in topics]

    :param python_callable: the function (given when the decorator is used without arguments).
    """
    kwargs.setdefault("multiple_outputs", False)
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=MistralBatchDecoratedOperator,
        **kwargs,
    )


__all__ = ["EXPECTED_RETURN", "MistralBatchDecoratedOperator", "input_of", "mistral_batch_task"]
