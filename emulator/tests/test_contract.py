"""Every emulator response conforms to the contract and to models.py.

A scenario drives every route of ``tests/contract/mistral-batch-files-openapi.yaml``
(successes, list pages and errors); every response it receives is then checked against the
contract's schema (JSON Schema validation plus an explicit walk over ``required`` fields,
with ``$ref`` resolved) and parsed with the pydantic model of its route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from airflow_provider_mistral_batch.models import (
    BatchJob,
    BatchJobList,
    DeletedBatchJob,
    DeletedFile,
    FileList,
    FileObject,
    RetrievedFile,
    SignedUrl,
)
from emulator.tests.support import CHAT, MODEL, Api, chat_line, jsonl
from mistral_batch_emulator import Fault, RunningEmulator

CONTRACT = Path(__file__).parents[2] / "tests" / "contract" / "mistral-batch-files-openapi.yaml"
MISSING_ID = "00000000-0000-4000-8000-000000000000"

MODELS: dict[str, type[BaseModel] | None] = {
    "files_api_routes_upload_file": FileObject,
    "files_api_routes_list_files": FileList,
    "files_api_routes_retrieve_file": RetrievedFile,
    "files_api_routes_delete_file": DeletedFile,
    "files_api_routes_download_file": None,
    "files_api_routes_get_signed_url": SignedUrl,
    "jobs_api_routes_batch_get_batch_jobs": BatchJobList,
    "jobs_api_routes_batch_create_batch_job": BatchJob,
    "jobs_api_routes_batch_get_batch_job": BatchJob,
    "jobs_api_routes_batch_delete_batch_job": DeletedBatchJob,
    "jobs_api_routes_batch_cancel_batch_job": BatchJob,
}
ERROR_KEYS = {"object", "message", "type", "param", "code"}


def _load() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(CONTRACT.read_text())
    return spec


SPEC = _load()


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = SPEC
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def missing_required(schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """Paths of required fields absent from ``value``, walking nested objects and arrays."""
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            if value is None:
                return []
            problems = [missing_required(branch, value, where) for branch in schema[key]]
            return min(problems, key=len)
    for branch in schema.get("allOf", []):
        missing = missing_required(branch, value, where)
        if missing:
            return missing
    found: list[str] = []
    if isinstance(value, dict):
        found += [f"{where}.{name}" for name in schema.get("required", []) if name not in value]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += missing_required(sub, value[name], f"{where}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += missing_required(schema["items"], item, f"{where}[{index}]")
    return found


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    for template, operations in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return template, operations[method.lower()]
    raise AssertionError(f"{method} {path} is not a route of the contract")


def check_response(response: httpx2.Response) -> tuple[str, str]:
    """Check one response against the contract; the (method, route) it belongs to."""
    request = response.request
    template, operation = _operation(request.method, request.url.path)
    status = response.status_code
    if status == 200:
        content = operation["responses"]["200"]["content"]
        if "application/octet-stream" in content:
            assert response.headers["content-type"] == "application/octet-stream"
        else:
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            schema = content["application/json"]["schema"]
            assert missing_required(schema, body) == [], (template, body)
            jsonschema.validate(body, {**schema, "components": SPEC["components"]})
            model = MODELS[operation["operationId"]]
            assert model is not None
            model.model_validate(body)
    elif status == 401:
        assert set(response.json()) == {"message", "request_id"}
    elif status == 422:
        detail = response.json()["detail"]
        assert detail
        assert all({"type", "loc", "msg"} <= set(item) for item in detail)
    else:
        body = response.json()
        assert set(body) == ERROR_KEYS, body
        assert body["object"] == "error"
        assert isinstance(body["message"], str)
        assert body["message"]
    return request.method, template


@pytest.fixture
def recorded(emulator: RunningEmulator) -> Iterator[tuple[Api, list[httpx2.Response]]]:
    """An API client that keeps every response it receives."""
    seen: list[httpx2.Response] = []

    def keep(response: httpx2.Response) -> None:
        response.read()
        seen.append(response)

    with httpx2.Client(
        base_url=emulator.base_url,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        event_hooks={"response": [keep]},
        timeout=10.0,
    ) as client:
        yield Api(client), seen


def _scenario(emulator: RunningEmulator, api: Api) -> None:
    http = api.http
    emulator.update_config(failing_custom_ids={"f1"})
    file_id = api.upload(jsonl([chat_line("a"), chat_line("f1"), "broken"]))["id"]
    api.upload(b"{}\n", filename="other.jsonl", purpose="fine-tune")
    http.get("/v1/files")
    http.get("/v1/files", params={"page": 1, "page_size": 1, "include_total": "false"})
    http.get("/v1/files", params={"purpose": "batch", "search": "input", "source": "upload"})
    http.get(f"/v1/files/{file_id}")
    http.get(f"/v1/files/{file_id}/content")
    http.get(f"/v1/files/{file_id}/url", params={"expiry": 1})

    job = api.create_job(input_files=[file_id], metadata={"kind": "contract"})
    done = api.wait(job["id"])
    api.create_job(requests=[chat_line("inline")], model=MODEL)
    api.job(job["id"], inline="true")
    http.post(f"/v1/batch/jobs/{job['id']}/cancel")
    http.get("/v1/batch/jobs")
    http.get("/v1/batch/jobs", params={"status": ["SUCCESS", "QUEUED"], "kind": "contract"})
    http.get("/v1/batch/jobs", params={"page": 5, "order_by": "created"})
    http.get(f"/v1/files/{done['output_file']}")
    http.get(f"/v1/files/{done['error_file']}")
    http.get("/v1/files", params={"sample_type": ["batch_result", "batch_error"]})
    emulator.update_config(queue_seconds=60.0)
    queued = api.create_job(input_files=[file_id])
    http.post(f"/v1/batch/jobs/{queued['id']}/cancel")
    http.delete(f"/v1/batch/jobs/{job['id']}")
    http.delete(f"/v1/files/{file_id}")

    # Errors on every route.
    for method, path in [
        ("GET", f"/v1/files/{MISSING_ID}"),
        ("DELETE", f"/v1/files/{MISSING_ID}"),
        ("GET", f"/v1/files/{MISSING_ID}/content"),
        ("GET", f"/v1/files/{MISSING_ID}/url"),
        ("GET", f"/v1/batch/jobs/{MISSING_ID}"),
        ("DELETE", f"/v1/batch/jobs/{MISSING_ID}"),
        ("POST", f"/v1/batch/jobs/{MISSING_ID}/cancel"),
        ("GET", "/v1/batch/jobs/not-a-uuid"),
    ]:
        http.request(method, path)
    http.post("/v1/batch/jobs", json={"endpoint": CHAT})
    http.post("/v1/files", data={"purpose": "batch"}, files={"x": ("a", b"")})
    http.get("/v1/files", params={"purpose": "nope"})
    http.get("/v1/batch/jobs", params={"status": "NOPE"})
    http.get("/v1/files", headers={"Authorization": "Bearer wrong"})
    emulator.set_faults(
        [
            Fault(kind="status", status_code=429, retry_after="1"),
            Fault(kind="status", status_code=503),
            Fault(kind="status", status_code=500),
        ]
    )
    for _ in range(3):
        http.get("/v1/batch/jobs")


def test_every_response_matches_the_contract(
    emulator: RunningEmulator, recorded: tuple[Api, list[httpx2.Response]]
) -> None:
    api, seen = recorded
    _scenario(emulator, api)
    statuses: dict[tuple[str, str], set[int]] = {}
    for response in seen:
        route = check_response(response)
        statuses.setdefault(route, set()).add(response.status_code)

    every_route = {
        (method.upper(), template)
        for template, operations in SPEC["paths"].items()
        for method in operations
    }
    assert set(statuses) == every_route
    assert all(200 in codes for codes in statuses.values()), statuses
    assert all(codes - {200} for codes in statuses.values()), statuses
    assert {401, 404, 422, 429, 500, 503} <= set().union(*statuses.values())


def test_the_checker_catches_a_missing_required_field() -> None:
    schema = SPEC["paths"]["/v1/batch/jobs"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    job = {"id": "x", "input_files": [], "endpoint": CHAT, "errors": [{"count": 1}]}
    missing = missing_required(schema, {"data": [job], "object": "list", "total": 1})
    assert "$.data[0].status" in missing
    assert "$.data[0].errors[0].message" in missing
    assert missing_required(schema, {"object": "list"}) == ["$.total"]
