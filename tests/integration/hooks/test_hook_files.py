"""Files API through the hook, against the emulator over real loopback HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx2
import pytest

from airflow_provider_mistral_batch.batch.result_lines import iter_results
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError, MistralNotFoundError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import FilePurpose, SampleType
from mistral_batch_emulator import RunningEmulator
from tests.helpers import write_jsonl

pytestmark = pytest.mark.integration


def test_upload_from_path_then_get(hook: MistralBatchHook, tmp_path: Path) -> None:
    source = tmp_path / "requests.jsonl"
    write_jsonl(source, ["a", "b", "c"])
    uploaded = hook.upload_file(source)
    assert uploaded.filename == "requests.jsonl"
    assert uploaded.bytes == source.stat().st_size
    assert uploaded.num_lines == 3
    assert uploaded.purpose == FilePurpose.BATCH
    assert uploaded.sample_type == SampleType.BATCH_REQUEST
    fetched = hook.get_file(uploaded.id)
    assert fetched.id == uploaded.id
    assert fetched.deleted is False


def test_upload_from_file_object_with_a_name(hook: MistralBatchHook) -> None:
    payload = b'{"custom_id": "x", "body": {"input": ["a"]}}\n'
    uploaded = hook.upload_file(io.BytesIO(payload), filename="inline.jsonl")
    assert uploaded.filename == "inline.jsonl"
    assert uploaded.bytes == len(payload)


def test_upload_of_a_missing_path_fails_before_any_request(
    hook: MistralBatchHook, tmp_path: Path, emulator: object
) -> None:
    with pytest.raises(MistralBatchInputError, match=r"nope\.jsonl' is not a file"):
        hook.upload_file(tmp_path / "nope.jsonl")


def test_download_to_path_and_file_object_and_iter_lines(
    hook: MistralBatchHook, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, [f"id-{i}" for i in range(20)])
    uploaded = hook.upload_file(source)

    target = tmp_path / "sub" / "copy.jsonl"
    written = hook.download_file(uploaded.id, target)
    assert written == source.stat().st_size
    assert target.read_bytes() == source.read_bytes()
    assert not [p for p in target.parent.iterdir() if p.name != "copy.jsonl"], "no temp left"

    buffer = io.BytesIO()
    hook.download_file(uploaded.id, buffer)
    assert buffer.getvalue() == source.read_bytes()

    lines = list(hook.iter_file_lines(uploaded.id))
    assert [json.loads(line)["custom_id"] for line in lines] == [f"id-{i}" for i in range(20)]


def test_list_files_walks_every_page_and_filters(hook: MistralBatchHook, tmp_path: Path) -> None:
    ids = set()
    for index in range(5):
        source = tmp_path / f"paged-{index}.jsonl"
        write_jsonl(source, ["a"])
        ids.add(hook.upload_file(source).id)
    listed = {f.id for f in hook.list_files(page_size=2, search="paged-")}
    assert listed == ids
    assert ids <= {f.id for f in hook.list_files(purpose="batch", sample_type=["batch_request"])}
    assert not ids & {f.id for f in hook.list_files(sample_type=["batch_result"])}


def test_list_files_asks_for_the_total(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "counted.jsonl"
    write_jsonl(source, ["a"])
    uploaded = hook.upload_file(source)
    emulator.clear_requests()
    assert [f.id for f in hook.list_files(page_size=1)] == [uploaded.id]
    queries = [r.query for r in emulator.requests if r.path == "/v1/files"]
    assert queries, "no listing request was recorded"
    assert all("include_total=true" in query for query in queries)


def test_delete_file_then_404_names_the_file(hook: MistralBatchHook, tmp_path: Path) -> None:
    source = tmp_path / "gone.jsonl"
    write_jsonl(source, ["a"])
    uploaded = hook.upload_file(source)
    deleted = hook.delete_file(uploaded.id)
    assert deleted.deleted is True
    assert deleted.id == uploaded.id
    with pytest.raises(MistralNotFoundError) as caught:
        hook.get_file(uploaded.id)
    assert caught.value.status_code == 404
    assert uploaded.id in str(caught.value)


def test_signed_url_downloads_without_the_key(hook: MistralBatchHook, tmp_path: Path) -> None:
    source = tmp_path / "signed.jsonl"
    write_jsonl(source, ["a", "b"])
    uploaded = hook.upload_file(source)
    url = hook.get_file_url(uploaded.id, expiry_hours=2)
    assert url.startswith("http")
    response = httpx2.get(url)
    assert response.status_code == 200
    assert response.content == source.read_bytes()
    with pytest.raises(MistralBatchInputError, match="between 1 and 168"):
        hook.get_file_url(uploaded.id, expiry_hours=0)


def test_empty_id_is_refused_before_any_request(hook: MistralBatchHook) -> None:
    with pytest.raises(MistralBatchInputError, match="file id must be a non-empty string"):
        hook.get_file(" ")


def test_iter_file_lines_keeps_lines_with_unicode_separators_whole(
    hook: MistralBatchHook,
) -> None:
    text = "first\u2028second\x85third"
    payload = json.dumps({"custom_id": "u", "body": {"input": [text]}}, ensure_ascii=False) + "\n"
    uploaded = hook.upload_file(io.BytesIO(payload.encode()), filename="unicode.jsonl")
    lines = list(hook.iter_file_lines(uploaded.id))
    assert len(lines) == 1
    assert json.loads(lines[0])["body"]["input"] == [text]


def test_downloaded_file_gets_the_usual_permissions(hook: MistralBatchHook, tmp_path: Path) -> None:
    import os

    source = tmp_path / "perm.jsonl"
    write_jsonl(source, ["a"])
    uploaded = hook.upload_file(source)
    umask = os.umask(0)
    os.umask(umask)
    target = tmp_path / "out" / "perm-copy.jsonl"
    hook.download_file(uploaded.id, target)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_downloaded_file_replacing_another_keeps_its_mode(
    hook: MistralBatchHook, tmp_path: Path
) -> None:
    source = tmp_path / "perm.jsonl"
    write_jsonl(source, ["a"])
    uploaded = hook.upload_file(source)
    target = tmp_path / "private.jsonl"
    target.write_text("earlier\n")
    target.chmod(0o600)
    hook.download_file(uploaded.id, target)
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o600


def test_iter_results_parses_lines_and_names_a_bad_one(hook: MistralBatchHook) -> None:
    from airflow_provider_mistral_batch.exceptions import MistralBatchError

    good = {"id": "x", "custom_id": "a", "response": {"status_code": 200, "body": {}}}
    failed = {"custom_id": "b", "error": "boom"}
    content = (json.dumps(good) + "\n" + json.dumps(failed) + "\n").encode()
    uploaded = hook.upload_file(io.BytesIO(content), filename="results.jsonl")
    results = list(iter_results(hook, uploaded.id))
    assert [(r.custom_id, r.succeeded, r.error_message) for r in results] == [
        ("a", True, None),
        ("b", False, "boom"),
    ]
    content = b'{"custom_id": "a", "error": "x"}\n[1, 2]\n'
    broken = hook.upload_file(io.BytesIO(content), filename="bad.jsonl")
    with pytest.raises(MistralBatchError, match=f"file {broken.id} line 2 is not a batch result"):
        list(iter_results(hook, broken.id))
