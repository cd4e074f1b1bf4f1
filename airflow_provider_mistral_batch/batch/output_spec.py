"""What a task asks each answer to be: an output type, its JSON schema, the request field
that asks the model for it, and the check of one answer.

``output_type=str`` (the default) asks for plain text. Any other type (a pydantic model, or
anything a pydantic ``TypeAdapter`` accepts) asks for JSON that validates against the type's
schema: chat requests get ``response_format`` of type ``json_schema``, and each answer's text
is parsed and validated. A root that is not a JSON object is wrapped as
``{"response": <schema>}`` (structured output wants an object) and unwrapped on validation,
as Airflow's common-ai batch operator does, so both produce the same requests.

Used by the submit operator, the results and the common-ai adapter alike: one directive, one
validation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from pydantic import TypeAdapter, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError

#: The key a non-object root type is wrapped under.
WRAPPER_KEY: Final = "response"
#: Longest schema name the API takes (as OpenAI's and common-ai's).
MAX_SCHEMA_NAME: Final = 64

_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class OutputSpec:
    """The output a task asks for.

    :param output_type: the type given (``str`` for text).
    :param structured: whether answers must be JSON of ``output_type``.
    :param json_schema: the schema sent in ``response_format`` (wrapped if need be); None
        for text.
    :param schema_name: the schema's name, from the type's name (``[A-Za-z0-9_-]``, at most
        64 characters).
    :param wrapped: whether the schema wraps a non-object root under ``"response"``.
    """

    output_type: Any
    structured: bool
    json_schema: dict[str, Any] | None
    schema_name: str
    wrapped: bool
    _adapter: TypeAdapter[Any] | None = None
    _wrapper: TypeAdapter[Any] | None = None

    def response_format(self) -> dict[str, Any] | None:
        """The ``response_format`` a chat request needs for this output; None for text."""
        if not self.structured:
            return None
        # strict=False: strict mode would have the API rewrite the user's schema (every
        # field required, no extra keys), and the answers would then not be what they asked.
        return {
            "type": "json_schema",
            "json_schema": {"name": self.schema_name, "schema": self.json_schema, "strict": False},
        }

    def check(self, text: str | None) -> tuple[bytes | None, str | None]:
        """One answer's text checked: ``(output as JSON bytes, None)`` or ``(None, problem)``.

        Text output: the text itself (JSON string), a problem only when there is none.
        Structured: the validated value (unwrapped), dumped as JSON; the problem says why the
        text does not parse or validate.
        """
        if text is None:
            return None, "the answer has no text"
        if not self.structured:
            return msgspec.json.encode(text), None
        assert self._adapter is not None  # structured specs always have one
        try:
            if self._wrapper is None:
                value = self._adapter.validate_json(text)
            else:
                value = getattr(self._wrapper.validate_json(text), WRAPPER_KEY)
        except ValidationError as exc:
            return None, _validation_problem(exc)
        return self._adapter.dump_json(value), None

    def check_answer(self, body: bytes) -> tuple[bytes | None, str | None]:
        """An answer checked, from its body (JSON bytes): :meth:`check` of its text, except
        that a text spec asks nothing of an answer without text (tool calls only, say): a
        success with no output, ``(None, None)``."""
        text = answer_text(body)
        if text is None and not self.structured:
            return None, None
        return self.check(text)

    def problem_of(self, body: bytes) -> str | None:
        """Why an answer (its body, JSON bytes) is invalid output; None when it is not. The
        one rule the results and the resubmit rounds apply (:meth:`check_answer`)."""
        return self.check_answer(body)[1]


def output_spec(output_type: Any = str) -> OutputSpec:
    """The :class:`OutputSpec` of ``output_type`` (``str``: plain text).

    :raises MistralBatchInputError: ``output_type`` is None or a string (not a type), or
        pydantic cannot make a JSON schema of it.
    """
    if output_type is str:
        return OutputSpec(str, structured=False, json_schema=None, schema_name="str", wrapped=False)
    if output_type is None:
        raise MistralBatchInputError(
            "output_type must be a type, e.g. str or a pydantic model, not None (leave it out, "
            "or give str, for the answers' text)"
        )
    if isinstance(output_type, str):
        raise MistralBatchInputError(
            f"output_type must be a type, e.g. str or a pydantic model, not the string "
            f"{output_type!r:.100}"
        )
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        schema = adapter.json_schema()
    except Exception as exc:
        # Anything pydantic raises on a value that is no type (a dict raises KeyError 'type'):
        # the DAG's import error must name output_type, not show a bare KeyError.
        detail = str(exc).splitlines()[0] if str(exc).strip() else ""
        if not isinstance(exc, PydanticSchemaGenerationError | PydanticUserError | TypeError):
            detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        # A type as written; any other value (a dict of a schema?) cut short.
        shown = repr(output_type) if isinstance(output_type, type) else f"{output_type!r:.100}"
        raise MistralBatchInputError(
            f"output_type={shown} has no JSON schema pydantic can make: {detail}"
        ) from None
    name = _schema_name(output_type)
    if schema.get("type") == "object":
        return OutputSpec(output_type, True, schema, name, False, adapter)
    # Structured output wants an object at the root: {"response": <the type>}.
    fields: dict[str, Any] = {WRAPPER_KEY: (output_type, ...)}
    wrapper_model = create_model(f"{name}Response", **fields)
    wrapper: TypeAdapter[Any] = TypeAdapter(wrapper_model)
    wrapped_schema = wrapper.json_schema()
    return OutputSpec(output_type, True, wrapped_schema, name, True, adapter, wrapper)


def _schema_name(output_type: Any) -> str:
    name = getattr(output_type, "__name__", None) or type(output_type).__name__
    return _NAME_CHARACTERS.sub("_", str(name))[:MAX_SCHEMA_NAME] or "output"


def _validation_problem(exc: ValidationError) -> str:
    """A validation error in one line: each problem with where it is, the first few."""
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(each) for each in error["loc"]) or "the answer"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


class _Message(msgspec.Struct):
    # Any: a chunk list may hold what this version does not know; content_text sorts it out.
    content: Any = None


class _Choice(msgspec.Struct):
    message: _Message | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice] = []


_decode_completion = msgspec.json.Decoder(_Completion).decode


def answer_text(body: bytes) -> str | None:
    """The text of a chat (or FIM) completion's first choice, from its body (JSON bytes).

    Reasoning models answer a list of content chunks (``thinking``, ``text``, ...): only the
    text chunks count, joined. None when the body has no message text.
    """
    try:
        completion = _decode_completion(body)
    except msgspec.DecodeError:
        return None
    if not completion.choices or completion.choices[0].message is None:
        return None
    return content_text(completion.choices[0].message.content)


def content_text(content: Any) -> str | None:
    """The text of a message's ``content``: a string, or the text chunks of a list of chunks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            chunk["text"]
            for chunk in content
            if isinstance(chunk, dict)
            and chunk.get("type") == "text"
            and isinstance(chunk.get("text"), str)
        ]
        return "".join(texts) if texts else None
    return None


__all__ = [
    "MAX_SCHEMA_NAME",
    "WRAPPER_KEY",
    "OutputSpec",
    "answer_text",
    "content_text",
    "output_spec",
]
