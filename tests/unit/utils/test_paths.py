"""The operators' results_path: folders made, and the mapped-task rule read from a template."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jinja2
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.utils.paths import (
    check_writable,
    make_folders,
    prepare_destination,
    shared_path_error,
    storage_path,
    uses_map_index,
)

ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)


@pytest.mark.parametrize(
    "template",
    [
        "s3://b/part-{{ ti.map_index }}.jsonl",
        "/r/{{ task_instance.map_index }}/out.jsonl",
        "/r/{{ ti['map_index'] }}.jsonl",
        "/r/{% if ti.map_index %}x{% endif %}-{{ run_id }}.jsonl",
        "/r/{{ map_index }}.jsonl",
    ],
)
def test_a_template_that_names_the_map_index_gives_each_instance_its_file(template: str) -> None:
    assert uses_map_index(template, ENV) is True


@pytest.mark.parametrize(
    "template",
    [
        "s3://b/out.jsonl",
        "/r/{{ run_id }}.jsonl",
        "/r/{{ dag_run.run_after | ts_nodash }}.jsonl",
        "/r/map_index.jsonl",  # the words, not the value
        "/r/{# ti.map_index #}.jsonl",  # a comment renders nothing
        "/r/{{ 'map_index' }}.jsonl",
        "/r/{{ broken",
        None,
    ],
)
def test_a_template_that_does_not_is_shared(template: str | None) -> None:
    assert uses_map_index(template, ENV) is False


def test_a_path_object_is_shared() -> None:
    assert uses_map_index(ObjectStoragePath("file:///tmp/r.jsonl"), ENV) is False


@pytest.mark.parametrize(
    ("template", "suggested"),
    [
        ("s3://b/out.jsonl", "s3://b/out-{{ ti.map_index }}.jsonl"),
        (
            "/r/{{ dag_run.run_after | ds }}.jsonl",
            "/r/{{ dag_run.run_after | ds }}-{{ ti.map_index }}.jsonl",
        ),
        ("/r/{{ dag_run.run_after | ds }}", "/r/{{ dag_run.run_after | ds }}-{{ ti.map_index }}"),
        ("/r.d/out", "/r.d/out-{{ ti.map_index }}"),
        ("/r/.hidden", "/r/.hidden-{{ ti.map_index }}"),
    ],
)
def test_the_error_suggests_the_path_with_the_map_index(template: str, suggested: str) -> None:
    error = shared_path_error(template, template, 1, 3)
    assert "the same file for map indexes 0 to 2 of this mapped task (this is map index 1)" in str(
        error
    )
    assert f"e.g. {suggested!r}, or expand results_path" in str(error)


def test_the_error_without_a_count_says_every_map_index() -> None:
    assert "for every map index of this mapped task" in str(shared_path_error("/r", "/r", 0, None))


@pytest.mark.parametrize("field", ["input_path", "results_path"])
def test_both_fields_take_the_same_values(tmp_path: Path, field: str) -> None:
    assert storage_path(str(tmp_path / "a.jsonl"), field) == tmp_path / "a.jsonl"
    assert storage_path(tmp_path / "a.jsonl", field) == tmp_path / "a.jsonl"
    from_url = storage_path(f"file://{tmp_path}/a.jsonl", field)
    assert isinstance(from_url, ObjectStoragePath)
    given = ObjectStoragePath(f"file://{tmp_path}/a.jsonl")
    assert storage_path(given, field) is given


def test_missing_local_folders_are_made_for_a_path_and_a_file_url(tmp_path: Path) -> None:
    make_folders(str(tmp_path / "a" / "b" / "r.jsonl"))
    assert (tmp_path / "a" / "b").is_dir()
    target = prepare_destination(f"file://{tmp_path}/c/d/r.jsonl")
    assert isinstance(target, ObjectStoragePath)
    assert (tmp_path / "c" / "d").is_dir()
    assert not (tmp_path / "c" / "d" / "r.jsonl").exists()  # the file itself waits for results


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(MistralBatchInputError, match=r"cannot create folder .*/file/sub: "):
        prepare_destination(str(tmp_path / "file" / "sub" / "r.jsonl"))


def test_no_folder_is_made_for_a_scheme_without_a_filesystem() -> None:
    match = r"^results_path 'nosuchscheme://bucket/r\.jsonl': no filesystem for its scheme \("
    with pytest.raises(MistralBatchInputError, match=match):
        prepare_destination("nosuchscheme://bucket/r.jsonl")


# ---------------------------------------------------------------- writable


def test_check_writable_accepts_a_writable_place_and_creates_nothing(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    check_writable(tmp_path / "r.jsonl")
    check_writable(str(tmp_path / "r.jsonl"))
    check_writable(ObjectStoragePath(f"file://{tmp_path}/r.jsonl"))
    assert list(tmp_path.iterdir()) == []


def test_check_writable_refuses_a_missing_local_folder(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "r.jsonl"
    with pytest.raises(MistralBatchInputError, match="does not exist") as caught:
        check_writable(path)
    assert str(path) in str(caught.value)


def test_check_writable_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(MistralBatchInputError, match="it is a folder"):
        check_writable(tmp_path)


def test_check_writable_refuses_an_object_storage_path_with_a_missing_parent(
    tmp_path: Path,
) -> None:
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(f"file://{tmp_path}/no/such/r.jsonl")
    with pytest.raises(MistralBatchInputError, match="does not exist") as caught:
        check_writable(path)
    assert f"file://{tmp_path}/no/such/r.jsonl" in str(caught.value)
    assert not (tmp_path / "no").exists()


def test_check_writable_refuses_a_scheme_without_a_filesystem() -> None:
    from airflow.sdk import ObjectStoragePath

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed: s3:// has a filesystem here")
    with pytest.raises(MistralBatchInputError, match="no filesystem") as caught:
        check_writable(ObjectStoragePath("s3://some-bucket/results/r.jsonl"))
    assert "s3://some-bucket/results/r.jsonl" in str(caught.value)
