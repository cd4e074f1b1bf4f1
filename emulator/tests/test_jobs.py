"""Batch API: job lifecycle, results, cancel, timeout, delete, validation, lists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from airflow_provider_mistral_batch.models import BatchJob, BatchJobList, BatchResultLine
from emulator.tests.support import CHAT, Api, chat_line, jsonl, parse_jsonl
from mistral_batch_emulator import RunningEmulator

MISSING_ID = "00000000-0000-4000-8000-000000000000"


def _chat_file(api: Api, count: int, prefix: str = "r") -> tuple[str, list[str]]:
    custom_ids = [f"{prefix}{index}" for index in range(count)]
    file_id = api.upload(jsonl(chat_line(custom_id) for custom_id in custom_ids))["id"]
    return file_id, custom_ids


def test_job_runs_to_success(api: Api) -> None:
    file_id, custom_ids = _chat_file(api, 40)
    created = BatchJob.model_validate(api.create_job(input_files=[file_id], metadata={"k": "v"}))
    assert created.status == "QUEUED"
    assert created.total_requests == 0
    assert created.input_files == [file_id]
    assert created.output_file is None
    assert created.started_at is None

    done = BatchJob.model_validate(api.wait(created.id))
    assert done.status == "SUCCESS"
    assert (done.total_requests, done.completed_requests) == (40, 40)
    assert (done.succeeded_requests, done.failed_requests) == (40, 0)
    assert done.started_at is not None
    assert done.completed_at is not None
    assert done.started_at <= done.completed_at
    assert done.error_file is None
    assert done.errors == []
    assert done.metadata == {"k": "v"}
    assert done.output_file is not None

    lines = [
        BatchResultLine.model_validate(line) for line in parse_jsonl(api.content(done.output_file))
    ]
    assert sorted(line.custom_id or "" for line in lines) == sorted(custom_ids)
    assert all(line.succeeded for line in lines)
    first = lines[0]
    assert first.id is not None
    assert first.id.startswith(f"batch-{created.id[:8]}-")
    assert first.response is not None
    body = first.response.body
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


def test_output_file_is_a_real_batch_result_file(api: Api, http: httpx2.Client) -> None:
    file_id, _ = _chat_file(api, 3)
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    output = http.get(f"/v1/files/{done['output_file']}").json()
    assert output["purpose"] == "batch"
    assert output["sample_type"] == "batch_result"
    assert output["source"] == "mistral"
    assert output["num_lines"] == 3
    assert output["bytes"] == len(api.content(done["output_file"]))
    listed = http.get("/v1/files", params={"sample_type": "batch_result"}).json()
    assert [item["id"] for item in listed["data"]] == [done["output_file"]]


def test_queued_then_running_with_counts(emulator: RunningEmulator, api: Api) -> None:
    # Wide windows (1 s queued, ~1 s running) so a slow CI machine still sees both states.
    emulator.update_config(queue_seconds=1.0, requests_per_second=60.0)
    file_id, _ = _chat_file(api, 60)
    job_id = api.create_job(input_files=[file_id])["id"]
    queued = api.job(job_id)
    assert queued["status"] == "QUEUED"
    assert queued["total_requests"] == 0
    running = api.wait(job_id, lambda job: 0 < job["completed_requests"] < 60)
    assert running["status"] == "RUNNING"
    assert running["total_requests"] == 60
    assert running["started_at"] is not None
    assert running["completed_at"] is None
    assert running["output_file"] is None
    done = api.wait(job_id)
    assert done["status"] == "SUCCESS"
    assert done["completed_requests"] == 60


def test_failing_custom_ids_go_to_the_error_file(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(failing_custom_ids={"r1", "r3"})
    file_id, _ = _chat_file(api, 5)
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    assert done["status"] == "SUCCESS"
    assert (done["succeeded_requests"], done["failed_requests"]) == (3, 2)
    errors = parse_jsonl(api.content(done["error_file"]))
    assert sorted(line["custom_id"] for line in errors) == ["r1", "r3"]
    for line in errors:
        assert line["response"]["status_code"] >= 400
        assert isinstance(line["error"], dict)
        assert line["error"]["message"]
        assert BatchResultLine.model_validate(line).error_message == line["error"]["message"]
    outputs = parse_jsonl(api.content(done["output_file"]))
    assert sorted(line["custom_id"] for line in outputs) == ["r0", "r2", "r4"]


def test_error_line_style_string(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(failing_custom_ids={"r0"}, error_line_style="string")
    file_id, _ = _chat_file(api, 2)
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    (line,) = parse_jsonl(api.content(done["error_file"]))
    assert isinstance(line["error"], str)
    assert "r0" in line["error"]


def test_malformed_lines_error_with_line_numbers(api: Api) -> None:
    content = jsonl(
        [
            chat_line("ok-1"),
            "not json at all",
            "[1, 2]",
            {"custom_id": "no-body"},
            "",
            {"custom_id": "bad-chat", "body": {"messages": "hello"}},
            chat_line("ok-2"),
        ]
    )
    file_id = api.upload(content)["id"]
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    assert done["status"] == "SUCCESS"
    assert done["total_requests"] == 6  # the blank line is not a request
    assert (done["succeeded_requests"], done["failed_requests"]) == (2, 4)
    errors = {
        line["error"]["message"]: line for line in parse_jsonl(api.content(done["error_file"]))
    }
    messages = sorted(errors)
    assert any("line 2 " in message and "not valid JSON" in message for message in messages)
    assert any("line 3 " in message and "JSON object" in message for message in messages)
    assert any("line 4 " in message and "body" in message for message in messages)
    assert any("line 6 " in message and "messages" in message for message in messages)
    custom_ids = {line["custom_id"] for line in errors.values()}
    assert custom_ids == {None, "no-body", "bad-chat"}


def test_unknown_input_file_fails(api: Api) -> None:
    done = api.wait(api.create_job(input_files=[MISSING_ID])["id"])
    assert done["status"] == "FAILED"
    assert MISSING_ID in done["errors"][0]["message"]
    assert done["output_file"] is None
    assert done["completed_at"] is not None


def test_deleted_input_file_fails(api: Api, http: httpx2.Client) -> None:
    file_id, _ = _chat_file(api, 2)
    http.delete(f"/v1/files/{file_id}")
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    assert done["status"] == "FAILED"
    assert file_id in done["errors"][0]["message"]


def test_input_without_any_valid_line_fails(api: Api) -> None:
    file_id = api.upload(jsonl(["nope", "{}", "[]"]))["id"]
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    assert done["status"] == "FAILED"
    assert done["errors"][0]["count"] == 3
    assert "line 1" in done["errors"][0]["message"]


def test_cancel_keeps_partial_output(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(requests_per_second=40.0)
    file_id, _ = _chat_file(api, 400)
    job_id = api.create_job(input_files=[file_id])["id"]
    api.wait(job_id, lambda job: job["completed_requests"] >= 5)
    response = api.http.post(f"/v1/batch/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLATION_REQUESTED"
    done = api.wait(job_id)
    assert done["status"] == "CANCELLED"
    assert 5 <= done["completed_requests"] < 400
    assert done["completed_at"] is not None
    partial = parse_jsonl(api.content(done["output_file"]))
    assert len(partial) == done["succeeded_requests"]

    again = api.http.post(f"/v1/batch/jobs/{job_id}/cancel").json()
    assert again["status"] == "CANCELLED"
    assert again["completed_requests"] == done["completed_requests"]


def test_cancel_without_partial_output(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(requests_per_second=40.0, partial_output_on_cancel=False)
    file_id, _ = _chat_file(api, 400)
    job_id = api.create_job(input_files=[file_id])["id"]
    api.wait(job_id, lambda job: job["completed_requests"] >= 2)
    api.http.post(f"/v1/batch/jobs/{job_id}/cancel")
    done = api.wait(job_id)
    assert done["status"] == "CANCELLED"
    assert done["output_file"] is None
    assert done["error_file"] is None


def test_cancel_while_queued(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(queue_seconds=30.0)
    file_id, _ = _chat_file(api, 3)
    job_id = api.create_job(input_files=[file_id])["id"]
    cancel = api.http.post(f"/v1/batch/jobs/{job_id}/cancel").json()
    assert cancel["status"] == "CANCELLATION_REQUESTED"
    done = api.wait(job_id)
    assert done["status"] == "CANCELLED"
    assert done["completed_requests"] == 0
    assert done["started_at"] is None


def test_cancel_ended_job_is_unchanged(api: Api) -> None:
    file_id, _ = _chat_file(api, 2)
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    again = api.http.post(f"/v1/batch/jobs/{done['id']}/cancel")
    assert again.status_code == 200
    assert again.json() == done


def test_timeout_exceeded_with_partial_output(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(requests_per_second=50.0, seconds_per_timeout_hour=0.3)
    file_id, _ = _chat_file(api, 1000)
    done = api.wait(api.create_job(input_files=[file_id], timeout_hours=1)["id"])
    assert done["status"] == "TIMEOUT_EXCEEDED"
    assert 0 < done["completed_requests"] < 1000
    assert done["errors"]
    assert "timeout" in done["errors"][0]["message"]
    assert len(parse_jsonl(api.content(done["output_file"]))) == done["succeeded_requests"]


def test_delete_job(emulator: RunningEmulator, api: Api) -> None:
    file_id, _ = _chat_file(api, 2)
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    response = api.http.delete(f"/v1/batch/jobs/{done['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": done["id"], "object": "batch", "deleted": True}
    assert api.http.get(f"/v1/batch/jobs/{done['id']}").status_code == 404
    assert api.http.delete(f"/v1/batch/jobs/{done['id']}").status_code == 404
    # Its files outlive it.
    assert api.http.get(f"/v1/files/{done['output_file']}").status_code == 200

    emulator.update_config(requests_per_second=1.0)
    running_id = api.create_job(input_files=[file_id])["id"]
    assert api.http.delete(f"/v1/batch/jobs/{running_id}").json()["deleted"] is True
    missing = api.http.get(f"/v1/batch/jobs/{running_id}")
    assert missing.status_code == 404
    assert running_id in missing.json()["message"]


def test_inline_requests(api: Api) -> None:
    requests = [chat_line(f"i{index}") for index in range(4)]
    created = api.create_job(requests=requests)
    assert created["input_files"] == []
    api.wait(created["id"])
    plain = api.job(created["id"])
    assert plain["outputs"] is None
    assert plain["status"] == "SUCCESS"
    inline = api.job(created["id"], inline="true")
    assert sorted(item["custom_id"] for item in inline["outputs"]) == ["i0", "i1", "i2", "i3"]
    assert all(item["response"]["status_code"] == 200 for item in inline["outputs"])
    assert len(parse_jsonl(api.content(inline["output_file"]))) == 4


def test_inline_flag_ignored_for_file_jobs(api: Api) -> None:
    file_id, _ = _chat_file(api, 2)
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    assert api.job(done["id"], inline="true")["outputs"] is None


def test_model_required_somewhere(api: Api) -> None:
    requests = [
        chat_line("no-model"),
        {
            "custom_id": "body-model",
            "body": {**chat_line("x")["body"], "model": "codestral-latest"},
        },
    ]
    done = api.wait(api.create_job(requests=requests, model=None)["id"])
    outputs = {item["custom_id"]: item for item in api.job(done["id"], inline="true")["outputs"]}
    assert outputs["no-model"]["error"]["message"].find("model") >= 0
    assert outputs["body-model"]["response"]["body"]["model"] == "codestral-latest"


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": CHAT},
        {"endpoint": CHAT, "input_files": [MISSING_ID], "requests": [chat_line("a")]},
        {"endpoint": "/v1/unknown", "input_files": [MISSING_ID]},
        {"endpoint": CHAT, "input_files": [MISSING_ID], "timeout_hours": 0},
        {"endpoint": CHAT, "input_files": [MISSING_ID], "timeout_hours": 169},
        {"endpoint": CHAT, "input_files": [MISSING_ID], "metadata": {"k" * 33: "v"}},
        {"endpoint": CHAT, "input_files": [MISSING_ID], "metadata": {"k": ""}},
        {"endpoint": CHAT, "input_files": ["not-a-uuid"]},
        {"endpoint": CHAT, "requests": [{"custom_id": "a"}]},
        {"input_files": [MISSING_ID]},
    ],
    ids=[
        "no-input",
        "both-inputs",
        "unknown-endpoint",
        "timeout-0",
        "timeout-169",
        "long-metadata-key",
        "empty-metadata-value",
        "file-id-not-uuid",
        "request-without-body",
        "no-endpoint",
    ],
)
def test_invalid_create_body_is_422(http: httpx2.Client, body: dict[str, object]) -> None:
    response = http.post("/v1/batch/jobs", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    assert {"type", "loc", "msg"} <= set(detail[0])
    assert http.get("/v1/batch/jobs").json()["total"] == 0


def test_unknown_and_malformed_job_ids(http: httpx2.Client) -> None:
    missing = http.get(f"/v1/batch/jobs/{MISSING_ID}")
    assert missing.status_code == 404
    assert MISSING_ID in missing.json()["message"]
    assert http.post(f"/v1/batch/jobs/{MISSING_ID}/cancel").status_code == 404
    assert http.delete(f"/v1/batch/jobs/{MISSING_ID}").status_code == 404
    assert http.get("/v1/batch/jobs/nope").status_code == 422


def test_list_filters_and_pages(emulator: RunningEmulator, api: Api, http: httpx2.Client) -> None:
    file_id, _ = _chat_file(api, 1)
    first = api.create_job(input_files=[file_id], metadata={"job_type": "a", "team": "x"})
    second = api.create_job(
        input_files=[file_id], metadata={"job_type": "b"}, model="mistral-large-latest"
    )
    api.wait(first["id"])
    api.wait(second["id"])
    emulator.update_config(queue_seconds=60.0)
    third = api.create_job(input_files=[file_id], metadata={"job_type": "a"})

    def ids(params: object) -> list[str]:
        response = http.get("/v1/batch/jobs", params=params)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        listing = BatchJobList.model_validate(response.json())
        return [job.id for job in listing.data]

    assert ids({}) == [third["id"], second["id"], first["id"]]
    assert ids({"order_by": "created"}) == [first["id"], second["id"], third["id"]]
    assert ids({"job_type": "a"}) == [third["id"], first["id"]]
    assert ids({"job_type": "a", "team": "x"}) == [first["id"]]
    assert ids({"metadata": '{"job_type": "b"}'}) == [second["id"]]
    assert ids({"metadata[job_type]": "b"}) == [second["id"]]
    assert ids({"model": "mistral-large-latest"}) == [second["id"]]
    assert ids([("status", "QUEUED"), ("status", "RUNNING")]) == [third["id"]]
    assert ids({"status": "SUCCESS"}) == [second["id"], first["id"]]
    assert ids({"created_by_me": "true"}) == [third["id"], second["id"], first["id"]]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert ids({"created_after": future}) == []
    assert len(ids({"created_after": past})) == 3

    page = http.get("/v1/batch/jobs", params={"page": 1, "page_size": 2}).json()
    assert [job["id"] for job in page["data"]] == [first["id"]]
    assert page["total"] == 3
    assert page["object"] == "list"

    for bad in [
        {"status": "DONE"},
        {"order_by": "name"},
        {"created_after": "yesterday"},
        {"metadata": "[1]"},
        {"page_size": 0},
    ]:
        assert http.get("/v1/batch/jobs", params=bad).status_code == 422, bad


def _job_ids(client: httpx2.Client, params: object) -> list[str]:
    response = client.get("/v1/batch/jobs", params=params)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return [job.id for job in BatchJobList.model_validate(response.json()).data]


def test_created_by_me_keeps_the_callers_jobs(emulator: RunningEmulator) -> None:
    emulator.update_config(api_key=None)
    clients = {
        name: httpx2.Client(
            base_url=emulator.base_url, headers={"Authorization": f"Bearer {name}"}, timeout=10
        )
        for name in ("key-a", "key-b", "key-c")
    }
    try:
        made = {
            name: Api(clients[name]).create_job(requests=[chat_line("1")])["id"]
            for name in ("key-a", "key-b")
        }
        a, b = clients["key-a"], clients["key-b"]
        assert _job_ids(a, {"created_by_me": "true"}) == [made["key-a"]]
        assert _job_ids(b, {"created_by_me": "true"}) == [made["key-b"]]
        assert _job_ids(clients["key-c"], {"created_by_me": "true"}) == []
        everyone = [made["key-b"], made["key-a"]]
        assert _job_ids(a, {"created_by_me": "false"}) == everyone
        assert _job_ids(a, {}) == everyone
        # The same token however the header spells the scheme and spaces it.
        spaced = {"Authorization": "bearer   key-a"}
        response = a.get("/v1/batch/jobs", params={"created_by_me": "true"}, headers=spaced)
        assert [job["id"] for job in response.json()["data"]] == [made["key-a"]]
        assert a.get("/v1/batch/jobs", params={"created_by_me": "maybe"}).status_code == 422
    finally:
        for client in clients.values():
            client.close()


def test_agent_id_filter(api: Api, http: httpx2.Client) -> None:
    with_agent = api.create_job(requests=[chat_line("1")], model=None, agent_id="agent-7")
    other_agent = api.create_job(requests=[chat_line("1")], model=None, agent_id="agent-8")
    no_agent = api.create_job(requests=[chat_line("1")])
    assert with_agent["agent_id"] == "agent-7"
    assert no_agent["agent_id"] is None
    assert _job_ids(http, {"agent_id": "agent-7"}) == [with_agent["id"]]
    assert _job_ids(http, {"agent_id": "agent-8"}) == [other_agent["id"]]
    assert _job_ids(http, {"agent_id": "agent-9"}) == []
    assert len(_job_ids(http, {})) == 3
    done = api.wait(with_agent["id"])
    assert done["status"] == "SUCCESS"
    assert done["succeeded_requests"] == 1


def test_the_console_job_page_shows_the_job_without_a_key(
    emulator: RunningEmulator, http: httpx2.Client
) -> None:
    created = http.post(
        "/v1/batch/jobs",
        json={
            "endpoint": "/v1/embeddings",
            "model": "mistral-embed",
            "requests": [{"custom_id": "a", "body": {"input": ["x"]}}],
        },
    ).json()
    # A browser follows the link: no Authorization header.
    page = httpx2.get(f"{emulator.base_url}/build/batches/{created['id']}", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"Batch job {created['id']}" in page.text
    assert "mistral-embed" in page.text
    assert emulator.api_key not in page.text
    unknown = httpx2.get(f"{emulator.base_url}/build/batches/{uuid.uuid4()}", timeout=10)
    assert unknown.status_code == 404
