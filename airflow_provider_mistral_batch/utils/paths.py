"""The operators' paths: what an ``input_path`` or a ``results_path`` names, whether results
can be written there, the folders they need, and the rule that the mapped instances of one
task never share one results file.

Both fields take the same values (:func:`storage_path`): a local path, a ``file://`` URL, an
``ObjectStoragePath``, or any URL string (``s3://...``, as a template renders it), made one.
Writing the joined results themselves is :mod:`..batch.results`; this module decides where.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.utils.wording import kind_of

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import BaseOperator

#: The name a template uses to tell one mapped task instance from another.
MAP_INDEX: Final = "map_index"
#: The protocols of fsspec's local filesystem.
_LOCAL_PROTOCOLS: Final = frozenset({"file", "local"})


def storage_path(value: Any, field: str) -> Any:
    """``input_path`` or ``results_path`` as a place to open: a :class:`~pathlib.Path` for a
    local path, an ``ObjectStoragePath`` for a URL string (``s3://...``, ``file://...``) or
    one given as such.

    :param value: the field's value, rendered.
    :param field: the field's name, for errors (``input_path``, ``results_path``).
    :raises MistralBatchInputError: ``<field> must be a local path, a URL or an
        ObjectStoragePath, got <kind>``, or ``<field> '<url>': no filesystem for its scheme
        (<why>)`` when no filesystem is installed (or attached) for the URL's scheme.
    """
    given = value  # errors name it as the user wrote it (Airflow 3.1 respells some URLs)
    if isinstance(value, str) and "://" in value:
        from airflow.sdk import ObjectStoragePath

        try:
            value = ObjectStoragePath(value)
        except ValueError as exc:  # Airflow 3.3 refuses a scheme no fsspec package knows
            raise _no_filesystem(given, field, exc) from None
    if is_object_storage(value):
        try:
            value.fs  # noqa: B018 - resolving the filesystem fails for a scheme that has none
        except (ValueError, ImportError) as exc:
            raise _no_filesystem(given, field, exc) from None
        return value
    if isinstance(value, str | os.PathLike):
        return Path(os.fspath(value))
    raise MistralBatchInputError(
        f"{field} must be a local path, a URL or an ObjectStoragePath, got {kind_of(value)}"
    )


def _no_filesystem(value: Any, field: str, exc: Exception) -> MistralBatchInputError:
    return MistralBatchInputError(f"{field} {str(value)!r}: no filesystem for its scheme ({exc})")


def is_object_storage(path: Any) -> bool:
    """Whether ``path`` is an ``ObjectStoragePath`` rather than a local path."""
    # An ObjectStoragePath (a UPath) has an ``fs`` property, its fsspec filesystem (looked up
    # on the class: reading it may fail). On Airflow 3.1 it is also os.PathLike, with an
    # fspath such as "s3://bucket/key", so it is told apart first.
    return not isinstance(path, str | bytes) and hasattr(type(path), "fs")


def local_path(path: Any) -> Path | None:
    """The local file a path names (a ``file://`` ``ObjectStoragePath`` included), or None
    when it is in an object store.

    :param path: what :func:`storage_path` returned.
    """
    if not is_object_storage(path):
        return Path(os.fspath(path))
    # The protocol decides, not the class: on some Airflow releases an ObjectStoragePath is
    # also a pathlib.Path.
    protocol = getattr(path, "protocol", None)
    protocols = set(protocol) if isinstance(protocol, tuple | list) else {protocol}
    if protocols & _LOCAL_PROTOCOLS:
        return Path(str(getattr(path, "path", path)))
    return None


def prepare_destination(results_path: Any) -> Any:
    """The destination of ``results_path`` (see :func:`storage_path`), its missing folders
    made (:func:`make_folders`) and checked writable (:func:`check_writable`).

    :raises MistralBatchInputError: naming the path, when it cannot be written.
    """
    target = storage_path(results_path, "results_path")
    make_folders(target)
    check_writable(target)
    return target


def make_folders(target: Any) -> None:
    """Create the missing parent folders of a local destination (a path, or an
    ``ObjectStoragePath`` on the local filesystem, ``file://``).

    Object stores (``s3://``, ``gs://``...) need none: they make "folders" as they write, and
    a missing bucket must be refused (by :func:`check_writable`), never created here.

    :raises MistralBatchInputError: naming the folder, when it cannot be created.
    """
    if is_object_storage(target):
        try:
            protocol = target.fs.protocol
        except (ValueError, ImportError):
            return  # no filesystem for the scheme: check_writable says so
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        if not protocols & _LOCAL_PROTOCOLS:
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


def check_writable(destination: str | os.PathLike[str] | Any) -> None:
    """Refuse a destination the results could not be written to, before any job exists.

    A tiny probe file is written beside the destination and deleted again; the destination
    itself is never created.

    :param destination: a local path or an ``ObjectStoragePath``.
    :raises MistralBatchInputError: naming the path: a local folder that does not exist, an
        object storage scheme with no filesystem, a missing bucket or folder, a destination
        that is a folder, or a place this process may not write to.
    """
    if is_object_storage(destination):
        _check_object_storage(destination)
    else:
        _check_local(Path(os.fspath(destination)))


def _check_local(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise MistralBatchInputError(
            f"cannot write results to {path}: folder {folder} does not exist"
        )
    if path.is_dir():
        raise MistralBatchInputError(f"cannot write results to {path}: it is a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise MistralBatchInputError(f"cannot write results to {path}: {exc}") from None


def _check_object_storage(path: Any) -> None:
    try:
        path.fs  # noqa: B018 - resolving the filesystem fails for a scheme that has none
    except (ValueError, ImportError) as exc:
        raise MistralBatchInputError(
            f"cannot write results to {path}: no filesystem for its scheme ({exc})"
        ) from None
    probe = path.parent / f".{path.name}.{uuid.uuid4().hex}.probe"
    try:
        is_folder = path.is_dir()
        if not is_folder:
            # Object stores make "folders" as they write; a local filesystem refuses a
            # missing one, and both refuse a missing bucket.
            with probe.open("wb") as handle:
                handle.write(b"")
            probe.unlink()
    except (OSError, ValueError) as exc:
        parent = path.parent
        reason = f"{parent} does not exist" if _missing(parent) else str(exc) or repr(exc)
        raise MistralBatchInputError(f"cannot write results to {path}: {reason}") from None
    if is_folder:
        raise MistralBatchInputError(f"cannot write results to {path}: it is a folder")


def _missing(folder: Any) -> bool:
    try:
        return not folder.exists()
    except (OSError, ValueError):
        return False


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
    "check_writable",
    "is_object_storage",
    "local_path",
    "make_folders",
    "prepare_destination",
    "shared_path_error",
    "storage_path",
    "uses_map_index",
]
