"""The operators' ``results_path``: what a rendered value names, the folders it needs, and the
rule that the mapped instances of one task never share one file.

Writing the joined results themselves is :mod:`.results`; this module decides where.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mistral_batch.batch.results import check_writable, is_object_storage
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import BaseOperator

#: The name a template uses to tell one mapped task instance from another.
MAP_INDEX: Final = "map_index"


def destination(results_path: Any) -> Any:
    """``results_path`` as given, except that a URL string (``s3://...``, ``file://...``, as a
    template renders it) becomes an ``ObjectStoragePath``."""
    if isinstance(results_path, str) and "://" in results_path:
        from airflow.sdk import ObjectStoragePath

        try:
            return ObjectStoragePath(results_path)
        except ValueError as exc:  # e.g. no filesystem is installed for the scheme
            raise MistralBatchInputError(f"cannot write results to {results_path}: {exc}") from None
    return results_path


def prepare_destination(results_path: Any) -> Any:
    """The destination of ``results_path`` (see :func:`destination`), its missing folders made
    (:func:`make_folders`) and checked writable (:func:`.results.check_writable`).

    :raises MistralBatchInputError: naming the path, when it cannot be written.
    """
    target = destination(results_path)
    make_folders(target)
    check_writable(target)
    return target


def make_folders(target: Any) -> None:
    """Create the missing parent folders of a local destination (a path, or an
    ``ObjectStoragePath`` on the local filesystem, ``file://``).

    Object stores (``s3://``, ``gs://``...) need none: they make "folders" as they write, and
    a missing bucket must be refused (by :func:`.results.check_writable`), never created here.

    :raises MistralBatchInputError: naming the folder, when it cannot be created.
    """
    if is_object_storage(target):
        try:
            protocol = target.fs.protocol
        except (ValueError, ImportError):
            return  # no filesystem for the scheme: check_writable says so
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        if not protocols & {"file", "local"}:
            return
        folder: Any = target.parent
    else:
        folder = Path(os.fspath(target)).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise MistralBatchInputError(
            f"cannot write results to {target}: cannot create folder {folder}: {exc}"
        ) from None


def check_not_shared(operator: BaseOperator, context: Mapping[str, Any]) -> None:
    """Refuse a ``results_path`` that every mapped instance of ``operator``'s task shares.

    Mapped instances run in parallel on any worker, and Airflow gives them no way to claim a
    file first (XCom has no compare-and-set): so the rule is read from the DAG alone, the same
    on every instance and every try, before anything is uploaded. A path given to
    ``partial()`` (one for all instances) must name the map index (:func:`uses_map_index`);
    one given to ``expand()`` or ``expand_kwargs()`` is each instance's own.

    :raises MistralBatchInputError: naming the path and the map indexes (:func:`shared_path_error`).
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    if map_index is None or map_index < 0:
        return
    try:
        dag = operator.dag
    except RuntimeError:  # no DAG: not a mapped instance
        return
    # The task of the DAG is the mapped one; ``operator`` is its instance for this map index.
    partial_kwargs = getattr(dag.task_dict.get(operator.task_id), "partial_kwargs", None)
    if not isinstance(partial_kwargs, Mapping) or "results_path" not in partial_kwargs:
        return
    template = partial_kwargs["results_path"]
    if template is None or uses_map_index(template, operator.get_template_env()):
        return
    try:
        count: int | None = ti.get_ti_count(
            dag_id=ti.dag_id, task_ids=[operator.task_id], run_ids=[ti.run_id]
        )
    except Exception:  # only the message needs it
        count = None
    raise shared_path_error(getattr(operator, "results_path", None), template, map_index, count)


def uses_map_index(template: Any, env: jinja2.Environment) -> bool:
    """Whether a ``results_path`` template shared by every mapped instance of a task gives
    each its own file: it must name the map index (``{{ ti.map_index }}``,
    ``{{ task_instance.map_index }}``...). A path that is not a template names none."""
    if not isinstance(template, str):
        return False
    from jinja2 import TemplateSyntaxError, nodes

    try:
        tree = env.parse(template)
    except TemplateSyntaxError:
        return False
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Name) and node.name == MAP_INDEX:
            return True
        if isinstance(node, nodes.Getattr) and node.attr == MAP_INDEX:
            return True
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and node.arg.value == MAP_INDEX
        ):
            return True
    return False


def shared_path_error(
    rendered: Any, template: Any, map_index: int, count: int | None
) -> MistralBatchInputError:
    """The error for a mapped task whose instances would all write one ``results_path``.

    :param rendered: the path as this instance rendered it.
    :param template: the path as the DAG gives it to every instance.
    :param count: how many mapped instances the task has, when known.
    """
    indexes = f"map indexes 0 to {count - 1}" if count and count > 1 else "every map index"
    return MistralBatchInputError(
        f"results_path {str(rendered)!r} is the same file for {indexes} of this "
        f"mapped task (this is map index {map_index}): each instance would replace the others' "
        "results and the file would hold only the last one's. Put the map index in it, e.g. "
        f"{_with_map_index(template)!r}, or expand results_path with one path per instance"
    )


def _with_map_index(template: Any) -> str:
    """``template`` with ``-{{ ti.map_index }}`` before the extension of its file name (a dot
    inside a ``{{ ... }}`` is not one)."""
    text = str(template)
    marker = "-{{ ti.map_index }}"
    name_start = text.rfind("/") + 1
    dot = text.rfind(".", max(name_start, text.rfind("}}") + 2))
    if dot <= name_start:  # no extension, or a hidden file's leading dot
        return text + marker
    return text[:dot] + marker + text[dot:]


__all__ = [
    "check_not_shared",
    "destination",
    "make_folders",
    "prepare_destination",
    "shared_path_error",
    "uses_map_index",
]
