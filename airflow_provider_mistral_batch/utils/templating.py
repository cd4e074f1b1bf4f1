"""Airflow templating helpers of the operators: skip rendering plain data, name the field of a
template error, and tell a literal value from one a template will give."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import DAG, BaseOperator

#: Context keys that only a run with a logical date has (a manual run in Airflow 3 has none).
LOGICAL_DATE_KEYS: Final = frozenset(
    {
        "logical_date",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "data_interval_start",
        "data_interval_end",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
    }
)

_PLAIN_SCALARS: Final = (int, float, bool, type(None))


def raise_template_error(operator: BaseOperator, content: Any, exc: Exception) -> None:
    """Raise a :class:`MistralBatchInputError` (no retries: every try renders the same) for a
    Jinja error (an undefined variable, bad syntax) in one of ``operator``'s template fields.

    Called for every value rendered: a value inside a field (an item of a list) returns, for
    the field's own call to name the field.
    """
    from jinja2 import TemplateSyntaxError, UndefinedError

    if not isinstance(exc, UndefinedError | TemplateSyntaxError):
        return
    field = next(
        (name for name in operator.template_fields if getattr(operator, name, None) is content),
        None,
    )
    if field is None:
        return
    hint = ""
    undefined = str(exc).split("'")
    if isinstance(exc, UndefinedError) and len(undefined) > 1 and undefined[1] in LOGICAL_DATE_KEYS:
        hint = (
            "; this run has no logical date (a manual run in Airflow 3 has none), so "
            f"{undefined[1]} is undefined: use a value every run has, such as "
            "{{ dag_run.run_after | ds }} or {{ run_id }}"
        )
    shown = repr(content)
    if len(shown) > 200:
        shown = shown[:197] + "..."
    raise MistralBatchInputError(
        f"{operator.task_id}: cannot render {field} {shown}: {exc}{hint} (a template error "
        "fails every try alike: no retries)"
    ) from None


def renders_to_itself(value: Any, env: jinja2.Environment, template_ext: Sequence[str]) -> bool:
    """Whether rendering ``value`` with ``env`` would give back equal data: only plain lists,
    tuples, dicts, numbers and strings with no marker of ``env``'s syntax and nothing Jinja
    rewrites (``\r``, a trailing newline it drops), no template file's name, and an
    environment that returns text (a native one may turn ``"1"`` into ``1``)."""
    from jinja2.nativetypes import NativeEnvironment

    if isinstance(env, NativeEnvironment) or env.line_statement_prefix or env.line_comment_prefix:
        return False
    markers = (env.variable_start_string, env.block_start_string, env.comment_start_string)
    # With the default syntax every marker starts with "{": one scan rules most strings out.
    leads = {marker[:1] for marker in markers}
    lead = leads.pop() if len(leads) == 1 else ""
    extensions = tuple(template_ext)
    keep_newline = env.keep_trailing_newline
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str:
            if (
                (lead in item and any(marker in item for marker in markers))
                or "\r" in item
                or (not keep_newline and item.endswith("\n"))
                or (extensions and item.endswith(extensions))
            ):
                return False
        elif kind is dict:
            pending.extend(item.values())  # Airflow renders values, never keys
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind not in _PLAIN_SCALARS:
            return False  # a path, an XComArg, an object with template fields: Airflow's way
    return True


def dag_of(operator: BaseOperator) -> DAG | None:
    """The operator's DAG, or None before it has one."""
    try:
        return operator.dag
    except RuntimeError:
        return None


def is_literal(operator: BaseOperator, value: Any) -> bool:
    """Whether ``value``, given to a template field of ``operator``, is already what the run
    will see: plain data with no ``{`` (the default Jinja markers) in any string, and a DAG
    that keeps Jinja's default syntax. Cheap, for checks when the DAG file is parsed; with no
    Jinja loaded. Anything else (a template, an XComArg) is checked once rendered."""
    dag = dag_of(operator)
    if dag is not None and (dag.jinja_environment_kwargs or dag.render_template_as_native_obj):
        # Its markers may not start with "{"; or even "1" renders to another type (the number).
        return False
    extensions = tuple(operator.template_ext)
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str:
            if "{" in item or (extensions and item.endswith(extensions)):
                return False
        elif kind is dict:
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind not in _PLAIN_SCALARS:
            return False
    return True
