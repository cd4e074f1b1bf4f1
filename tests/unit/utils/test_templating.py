"""Templating helpers: strings Jinja would return unchanged are returned as they are, without
compiling them (everything else renders as before); literal values are told from templates."""

from __future__ import annotations

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.nativetypes import NativeEnvironment
from jinja2.sandbox import SandboxedEnvironment

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.utils.templating import is_literal, renders_to_itself

CHAT = "/v1/chat/completions"
# Text built from the pieces that matter to Jinja's lexer, plus anything else.
PIECES = st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "{", "}", "\n", "\r", "#", "%", " "])
TEXTS = st.lists(PIECES | st.text(max_size=5), max_size=12).map("".join)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=TEXTS, keep_newline=st.booleans())
def test_a_string_taken_as_is_is_what_jinja_renders(text: str, keep_newline: bool) -> None:
    env = SandboxedEnvironment(keep_trailing_newline=keep_newline)
    if renders_to_itself(text, env, ()):
        assert env.from_string(text).render() == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Summarize this.", True),
        ("a { b } c", True),
        ("{{ ds }}", False),
        ("{% if x %}y{% endif %}", False),
        ("{# note #}", False),
        ("ends with a newline\n", False),  # Jinja drops it by default
        ("windows\r\nline", False),  # Jinja rewrites it
        ("prompt.sql", False),  # a template file's name
    ],
)
def test_which_strings_are_taken_as_is(text: str, expected: bool) -> None:
    assert renders_to_itself(text, SandboxedEnvironment(), (".sql",)) is expected


def test_other_syntaxes_and_native_rendering_always_go_through_jinja() -> None:
    assert not renders_to_itself("<< x >>", SandboxedEnvironment(variable_start_string="<<"), ())
    assert not renders_to_itself("plain", SandboxedEnvironment(line_statement_prefix="#"), ())
    # A native environment may turn "1" into 1.
    assert not renders_to_itself("1", NativeEnvironment(), ())


def test_the_operator_renders_markers_and_keeps_the_rest() -> None:
    op = MistralBatchOperator(
        task_id="t",
        endpoint=CHAT,
        requests=[
            {"custom_id": "a", "body": {"messages": [{"role": "user", "content": "Hi {{ ds }}"}]}},
            {
                "custom_id": "request-b",
                "body": {"messages": [{"role": "user", "content": "Plain"}]},
            },
        ],
    )
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    rendered = op.render_template(op.requests, {"ds": "2026-11-30"}, env)  # type: ignore[arg-type]
    assert rendered[0]["body"]["messages"][0]["content"] == "Hi 2026-11-30"
    assert rendered[1]["body"]["messages"][0]["content"] == "Plain"
    # A literal string is the very same object: it was never compiled or copied.
    assert rendered[1]["custom_id"] is op.requests[1]["custom_id"]


def test_plain_data_is_taken_as_is_only_when_every_string_is() -> None:
    env = SandboxedEnvironment()
    plain = [{"custom_id": "a", "body": {"n": 1, "x": None, "t": ("u", 2.5, True)}}]
    assert renders_to_itself(plain, env, ())
    deep = [{"custom_id": "a", "body": {"messages": [{"content": "{{ ds }}"}]}}]
    assert not renders_to_itself(deep, env, ())
    # Anything but plain data (a path, an XComArg, an object with template fields) goes
    # through Airflow's rendering.
    assert not renders_to_itself([{"custom_id": "a", "body": object()}], env, ())
    assert not renders_to_itself({"a": {1, 2}}, env, ())


def test_is_literal_tells_plain_values_from_templates_and_objects() -> None:
    op = MistralBatchOperator(task_id="t", endpoint=CHAT, input_files=["f"])
    assert is_literal(op, "/v1/chat/completions")
    assert is_literal(op, {"agent_id": "a", "n": [1, 2.5, None, True]})
    assert is_literal(op, None)
    assert not is_literal(op, "{{ params.endpoint }}")
    assert not is_literal(op, {"agent_id": "{{ var.value.agent }}"})
    assert not is_literal(op, [object()])  # an XComArg, a path: only the run knows


def test_is_literal_leaves_a_dag_with_its_own_jinja_syntax_to_the_render() -> None:
    from airflow.sdk import DAG

    with DAG("custom", schedule=None, jinja_environment_kwargs={"variable_start_string": "<<"}):
        op = MistralBatchOperator(task_id="t", endpoint=CHAT, input_files=["f"])
    assert not is_literal(op, "<< params.endpoint >>")
    assert not is_literal(op, "plain")


def test_is_literal_leaves_a_native_rendering_dag_to_the_render() -> None:
    # With native rendering even "1" becomes another type (the number 1) once rendered.
    from airflow.sdk import DAG

    with DAG("native", schedule=None, render_template_as_native_obj=True):
        op = MistralBatchOperator(task_id="t", endpoint=CHAT, input_files=["f"])
    assert not is_literal(op, {"k": "1"})
