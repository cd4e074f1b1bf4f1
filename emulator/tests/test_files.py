"""Files API: upload, list, retrieve, download, signed URL, delete, auth."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from airflow_provider_mistral_batch.models import FileList, FileObject, RetrievedFile
from emulator.tests.support import Api, chat_line, jsonl
from mistral_batch_emulator import EmulatorConfig, RunningEmulator, run_emulator

MISSING_ID = "00000000-0000-4000-8000-000000000000"


def test_upload_describes_a_batch_file(api: Api) -> None:
    content = jsonl([chat_line("a"), chat_line("b"), chat_line("c")])
    uploaded = FileObject.model_validate(api.upload(content, filename="requests.jsonl"))
    assert uploaded.bytes == len(content)
    assert uploaded.num_lines == 3
    assert uploaded.filename == "requests.jsonl"
    assert uploaded.purpose == "batch"
    assert uploaded.sample_type == "batch_request"
    assert uploaded.source == "upload"
    assert uploaded.mimetype == "application/jsonl"
    assert uploaded.object == "file"
    assert api.content(uploaded.id) == content


def test_line_count_without_final_newline(api: Api) -> None:
    uploaded = api.upload(b'{"a":1}\n{"b":2}', filename="x.jsonl")
    assert uploaded["num_lines"] == 2
    assert uploaded["bytes"] == 15


def test_purpose_other_than_batch(api: Api) -> None:
    uploaded = api.upload(b"{}\n", filename="train.jsonl", purpose="fine-tune")
    assert uploaded["purpose"] == "fine-tune"
    assert uploaded["sample_type"] == "instruct"


def test_retrieve_then_delete(api: Api, http: httpx2.Client) -> None:
    file_id = api.upload(b"{}\n")["id"]
    retrieved = RetrievedFile.model_validate(http.get(f"/v1/files/{file_id}").json())
    assert retrieved.id == file_id
    assert retrieved.deleted is False

    deleted = http.delete(f"/v1/files/{file_id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": file_id, "object": "file", "deleted": True}

    for method, path in [
        ("GET", f"/v1/files/{file_id}"),
        ("GET", f"/v1/files/{file_id}/content"),
        ("GET", f"/v1/files/{file_id}/url"),
        ("DELETE", f"/v1/files/{file_id}"),
    ]:
        response = http.request(method, path)
        assert response.status_code == 404, (method, path)
        assert file_id in response.json()["message"]
        assert response.json()["object"] == "error"


def test_download_is_octet_stream(api: Api, http: httpx2.Client) -> None:
    file_id = api.upload(b"line\n")["id"]
    response = http.get(f"/v1/files/{file_id}/content")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == b"line\n"


def test_list_newest_first_with_pages(api: Api, http: httpx2.Client) -> None:
    ids = [api.upload(b"{}\n", filename=f"f{index}.jsonl")["id"] for index in range(5)]
    listing = FileList.model_validate(http.get("/v1/files").json())
    assert [item.id for item in listing.data] == ids[::-1]
    assert listing.total == 5

    page = http.get("/v1/files", params={"page": 1, "page_size": 2}).json()
    assert [item["id"] for item in page["data"]] == ids[::-1][2:4]
    assert page["total"] == 5

    no_total = http.get("/v1/files", params={"include_total": "false"}).json()
    assert no_total["total"] is None
    assert len(no_total["data"]) == 5

    beyond = http.get("/v1/files", params={"page": 9, "page_size": 2}).json()
    assert beyond["data"] == []


def test_list_filters(api: Api, http: httpx2.Client) -> None:
    batch = api.upload(b"{}\n", filename="alpha-requests.jsonl")["id"]
    tune = api.upload(b"{}\n", filename="beta.jsonl", purpose="fine-tune")["id"]
    text = api.upload(b"x\n", filename="notes.txt", purpose="ocr")["id"]

    def ids(**params: object) -> set[str]:
        response = http.get("/v1/files", params=params)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["data"]}

    assert ids(purpose="batch") == {batch}
    assert ids(search="ALPHA") == {batch}
    assert ids(sample_type=["batch_request", "instruct"]) == {batch, tune, text}
    assert ids(sample_type="batch_result") == set()
    assert ids(source="upload") == {batch, tune, text}
    assert ids(source="mistral") == set()
    assert ids(mimetypes=["text/plain"]) == {text}
    assert http.get("/v1/files", params={"purpose": "nope"}).status_code == 422
    assert http.get("/v1/files", params={"sample_type": "nope"}).status_code == 422
    assert http.get("/v1/files", params={"page": -1}).status_code == 422


def test_signed_url_downloads_without_auth(api: Api, http: httpx2.Client) -> None:
    file_id = api.upload(b"secret\n")["id"]
    response = http.get(f"/v1/files/{file_id}/url", params={"expiry": 2})
    assert response.status_code == 200
    url = response.json()["url"]
    assert url.startswith(str(http.base_url).rstrip("/"))
    assert httpx2.get(url).content == b"secret\n"
    assert httpx2.get(url.replace("sig=", "sig=0")).status_code == 403


@pytest.mark.parametrize("expiry", [0, 169])
def test_signed_url_expiry_bounds(api: Api, http: httpx2.Client, expiry: int) -> None:
    file_id = api.upload(b"x\n")["id"]
    assert http.get(f"/v1/files/{file_id}/url", params={"expiry": expiry}).status_code == 422


def test_upload_validation(http: httpx2.Client) -> None:
    no_file = http.post("/v1/files", data={"purpose": "batch"}, files={"other": ("a", b"x")})
    assert no_file.status_code == 422
    assert no_file.json()["detail"][0]["loc"] == ["body", "file"]

    bad_purpose = http.post("/v1/files", files={"file": ("a.jsonl", b"{}")}, data={"purpose": "x"})
    assert bad_purpose.status_code == 422
    assert bad_purpose.json()["detail"][0]["loc"] == ["body", "purpose"]

    not_multipart = http.post("/v1/files", json={"file": "x"})
    assert not_multipart.status_code == 422
    assert http.get("/v1/files").json()["total"] == 0


def test_upload_over_the_size_limit(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.update_config(max_file_bytes=1000)
    response = http.post("/v1/files", files={"file": ("big.jsonl", b"x" * 5000)})
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["message"]
    assert http.get("/v1/files").json()["total"] == 0


def test_not_a_uuid_is_422(http: httpx2.Client) -> None:
    assert http.get("/v1/files/not-a-uuid").status_code == 422


def test_unknown_file_is_404_naming_it(http: httpx2.Client) -> None:
    response = http.get(f"/v1/files/{MISSING_ID}")
    assert response.status_code == 404
    assert MISSING_ID in response.json()["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "emulator-key"}],
    ids=["missing", "wrong", "no-scheme"],
)
def test_auth_required(emulator: RunningEmulator, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/v1/files"), ("POST", "/v1/batch/jobs")]:
        response = httpx2.request(method, emulator.base_url + path, headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["message"] == "Unauthorized"
        assert body["request_id"]


def test_any_key_when_api_key_is_none(emulator: RunningEmulator) -> None:
    emulator.update_config(api_key=None)
    ok = httpx2.get(emulator.base_url + "/v1/files", headers={"Authorization": "Bearer x"})
    assert ok.status_code == 200
    empty = httpx2.get(emulator.base_url + "/v1/files", headers={"Authorization": "Bearer"})
    assert empty.status_code == 401


@pytest.mark.parametrize(
    "token", ["clé".encode("latin-1"), "clé".encode()], ids=["latin-1", "utf-8"]
)
def test_non_ascii_token_is_401(emulator: RunningEmulator, token: bytes) -> None:
    # The raw bytes go on the wire as they are (httpx sends a bytes header value unchanged).
    headers = {b"Authorization": b"Bearer " + token}
    for method, path in [("GET", "/v1/files"), ("POST", "/v1/batch/jobs")]:
        response = httpx2.request(method, emulator.base_url + path, headers=headers)
        assert response.status_code == 401, response.text
        body = response.json()
        assert body["message"] == "Unauthorized"
        assert body["request_id"]


def test_non_ascii_key_matches_its_utf8_bytes(emulator: RunningEmulator) -> None:
    emulator.update_config(api_key="clé")
    url = emulator.base_url + "/v1/files"
    assert httpx2.get(url, headers={b"Authorization": "Bearer clé".encode()}).status_code == 200
    latin1 = httpx2.get(url, headers={b"Authorization": "Bearer clé".encode("latin-1")})
    assert latin1.status_code == 401


_PURPOSE_PART = b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
_FILE_HEAD = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n'
_LINE = b'{"custom_id":"a","body":{"messages":[]}}\n'


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        (_FILE_HEAD + b"abc", ["body", "file"], "missing"),
        (_PURPOSE_PART + _FILE_HEAD + _LINE, ["body", "file"], "missing"),
        (_FILE_HEAD + _LINE + b"\r\n--B", ["body", "file"], "missing"),
        (_FILE_HEAD + _LINE + b"\r\n--B\r\n", ["body"], "value_error"),
        (_FILE_HEAD + _LINE + b"\r\n" + _PURPOSE_PART, ["body"], "value_error"),
    ],
    ids=[
        "cut-in-file",
        "cut-at-file-end",
        "cut-in-boundary",
        "cut-after-boundary",
        "cut-in-field",
    ],
)
def test_upload_without_closing_boundary_is_422_and_not_stored(
    tmp_path: Path, body: bytes, loc: list[str], error_type: str
) -> None:
    with run_emulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        with httpx2.Client(base_url=emulator.base_url, headers=headers) as http:
            response = http.post(
                "/v1/files",
                content=body,
                headers={"Content-Type": "multipart/form-data; boundary=B"},
            )
            assert response.status_code == 422, response.text
            error = response.json()["detail"][0]
            assert (error["loc"], error["type"]) == (loc, error_type)
            assert http.get("/v1/files").json()["total"] == 0
            # The same body with its closing boundary is a valid upload.
            closed = http.post(
                "/v1/files",
                content=_FILE_HEAD + _LINE + b"\r\n--B--\r\n",
                headers={"Content-Type": "multipart/form-data; boundary=B"},
            )
            assert closed.status_code == 200, closed.text
            assert closed.json()["bytes"] == len(_LINE)
            stored = [path for path in tmp_path.rglob("*") if path.is_file()]
            assert [path.name for path in stored] == [f"{closed.json()['id']}.bin"]


# agentic_safety: the newest official Python SDK (mistralai 3.7) sends it.
@pytest.mark.parametrize("purpose", ["fine-tune", "batch", "ocr", "audio", "agentic_safety"])
def test_every_contract_purpose_is_accepted_and_listed(
    api: Api, http: httpx2.Client, purpose: str
) -> None:
    other = "ocr" if purpose != "ocr" else "batch"
    api.upload(b"{}\n", filename="other.jsonl", purpose=other)
    uploaded = api.upload(b"{}\n", filename="f.jsonl", purpose=purpose)
    assert uploaded["purpose"] == purpose
    assert uploaded["sample_type"] == ("batch_request" if purpose == "batch" else "instruct")
    assert http.get(f"/v1/files/{uploaded['id']}").json()["purpose"] == purpose
    listed = http.get("/v1/files", params={"purpose": purpose})
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["data"]] == [uploaded["id"]]


def test_unknown_purpose_is_422_naming_it(http: httpx2.Client) -> None:
    for purpose in ["x", "Batch", "fine_tune", "assistants", "agentic-safety"]:
        response = http.post(
            "/v1/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": purpose}
        )
        assert response.status_code == 422, (purpose, response.text)
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "purpose"]
        assert error["type"] == "enum"
        assert error["input"] == purpose
        assert error["msg"] == (
            "Input should be 'fine-tune', 'batch', 'ocr', 'audio' or 'agentic_safety'"
        )

        listed = http.get("/v1/files", params={"purpose": purpose})
        assert listed.status_code == 422
        assert listed.json()["detail"][0]["loc"] == ["query", "purpose"]
    assert http.get("/v1/files").json()["total"] == 0


def test_repeated_purpose_last_value_counts(http: httpx2.Client) -> None:
    file_part = ("file", ("a.jsonl", b"{}\n"))
    refused = http.post(
        "/v1/files",
        files=[file_part, ("purpose", (None, b"batch")), ("purpose", (None, b"bogus"))],
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "purpose"]
    assert http.get("/v1/files").json()["total"] == 0

    accepted = http.post(
        "/v1/files",
        files=[file_part, ("purpose", (None, b"bogus")), ("purpose", (None, b"batch"))],
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["purpose"] == "batch"
