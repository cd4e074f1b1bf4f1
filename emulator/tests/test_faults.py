"""Injected faults: status codes, dropped connections, delays, random faults, request log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx2
import pytest

from emulator.tests.support import CHAT, MODEL, Api, chat_line
from mistral_batch_emulator import Fault, RunningEmulator

JOB_BODY = {"endpoint": CHAT, "model": MODEL, "requests": [chat_line("a")]}
JOBS = "/v1/batch/jobs"


def _job_count(http: httpx2.Client) -> int:
    total: int = http.get(JOBS).json()["total"]
    return total


def test_status_fault_with_retry_after(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.set_faults([Fault(kind="status", status_code=429, retry_after="2")])
    response = http.post(JOBS, json=JOB_BODY)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["object"] == "error"
    assert body["type"] == "rate_limited"
    assert set(body) == {"object", "message", "type", "param", "code"}
    assert _job_count(http) == 0  # not processed
    assert http.post(JOBS, json=JOB_BODY).status_code == 200  # the fault was consumed


def test_status_fault_without_retry_after(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.set_faults([Fault(kind="status", status_code=503)])
    response = http.get(JOBS)
    assert response.status_code == 503
    assert "retry-after" not in response.headers
    assert response.json()["message"]


def test_drop_before_creates_nothing(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.set_faults([Fault(kind="drop_before", method="POST", path_prefix=JOBS)])
    with pytest.raises(httpx2.TransportError):
        http.post(JOBS, json=JOB_BODY)
    assert _job_count(http) == 0
    dropped = [item for item in emulator.requests if item.method == "POST"]
    assert [(item.status_code, item.fault) for item in dropped] == [(None, "drop_before")]


def test_drop_after_creates_the_job(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.set_faults([Fault(kind="drop_after", method="POST", path_prefix=JOBS)])
    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
        http.post(JOBS, json=JOB_BODY)
    assert _job_count(http) == 1


def test_drop_after_on_a_download(emulator: RunningEmulator, api: Api) -> None:
    file_id = api.upload(b"x" * 10_000)["id"]
    emulator.set_faults([Fault(kind="drop_after", path_prefix="/v1/files")])
    with pytest.raises(httpx2.TransportError):
        api.http.get(f"/v1/files/{file_id}/content")
    assert api.content(file_id) == b"x" * 10_000


def test_delay_after_times_the_client_out_after_the_work(
    emulator: RunningEmulator, emulator_url_client: httpx2.Client, http: httpx2.Client
) -> None:
    emulator.set_faults([Fault(kind="delay_after", delay_seconds=2.0, method="POST")])
    with pytest.raises(httpx2.ReadTimeout):
        emulator_url_client.post(JOBS, json=JOB_BODY)
    assert _job_count(http) == 1
    # The emulator logs the request when its late answer is sent: wait for it here, or it
    # lands in the request log of a later test.
    limit = time.monotonic() + 10
    while not any(item.fault == "delay_after" for item in emulator.requests):
        assert time.monotonic() < limit, "the delayed answer was never sent"
        time.sleep(0.05)


def test_delay_before_still_answers(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.set_faults([Fault(kind="delay_before", delay_seconds=0.05)])
    assert http.get(JOBS).status_code == 200
    assert emulator.requests[-1].fault == "delay_before"


def test_only_the_first_fault_is_matched(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.set_faults(
        [
            Fault(kind="status", status_code=500, path_prefix="/v1/files"),
            Fault(kind="status", status_code=502),
        ]
    )
    assert http.get(JOBS).status_code == 200  # does not match the first fault
    assert http.get("/v1/files").status_code == 500
    assert http.get(JOBS).status_code == 502
    assert http.get(JOBS).status_code == 200
    assert emulator.pending_faults == []


def test_faults_only_hit_the_api(emulator: RunningEmulator, api: Api) -> None:
    file_id = api.upload(b"data\n")["id"]
    url = api.http.get(f"/v1/files/{file_id}/url").json()["url"]
    emulator.set_faults([Fault(kind="status", status_code=500)])
    assert httpx2.get(url).status_code == 200
    assert api.http.get("/v1/files").status_code == 500


def test_random_faults_follow_the_seed(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.update_config(fault_rate=0.5, seed=7)
    first = [http.get(JOBS).status_code for _ in range(30)]
    assert set(first) - {200} <= {429, 500, 503}
    assert 200 in first
    assert set(first) != {200}
    emulator.update_config(seed=7)
    assert [http.get(JOBS).status_code for _ in range(30)] == first


def test_random_faults_from_a_custom_pool(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.update_config(
        fault_rate=1.0, fault_pool=[Fault(kind="status", status_code=504, method="GET")]
    )
    assert http.get(JOBS).status_code == 504
    # No pool fault matches a POST, so it goes through.
    assert http.post(JOBS, json=JOB_BODY).status_code == 200


def test_request_log(emulator: RunningEmulator, http: httpx2.Client) -> None:
    http.get(JOBS, params={"status": ["QUEUED", "RUNNING"]})
    http.get("/v1/files/not-a-uuid")
    log = emulator.requests
    assert [(item.method, item.path, item.status_code) for item in log] == [
        ("GET", JOBS, 200),
        ("GET", "/v1/files/not-a-uuid", 422),
    ]
    assert log[0].query == "status=QUEUED&status=RUNNING"
    emulator.clear_requests()
    assert emulator.requests == []


def test_latency_keeps_answers_correct(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.update_config(latency_seconds=0.05)
    assert http.get(JOBS).status_code == 200


def test_update_config_rejects_unknown_settings(emulator: RunningEmulator) -> None:
    with pytest.raises(TypeError):
        emulator.update_config(no_such_setting=1)
    with pytest.raises(ValueError, match="requests_per_second"):
        emulator.update_config(requests_per_second=-1)


@pytest.fixture
def emulator_url_client(emulator: RunningEmulator) -> Iterator[httpx2.Client]:
    """A client with a short read timeout."""
    with httpx2.Client(
        base_url=emulator.base_url,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=httpx2.Timeout(5.0, read=0.3),
    ) as client:
        yield client


def test_a_fault_for_an_exact_path(emulator: RunningEmulator, http: httpx2.Client) -> None:
    """``path`` hits the job list and not the jobs under it (``path_prefix`` would)."""
    job_id = http.post(JOBS, json=JOB_BODY).json()["id"]
    emulator.set_faults([Fault(kind="status", status_code=403, method="GET", path=JOBS)])
    assert http.get(f"{JOBS}/{job_id}").status_code == 200
    assert emulator.pending_faults != []
    assert http.get(JOBS).status_code == 403
    assert emulator.pending_faults == []


def test_garbled_answers_200_with_a_body_that_is_not_json(
    emulator: RunningEmulator, http: httpx2.Client
) -> None:
    emulator.set_faults([Fault(kind="garbled", method="POST")])
    response = http.post(JOBS, json=JOB_BODY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert _job_count(http) == 0  # not processed
    assert emulator.requests[-2].fault == "garbled"


def test_endless_pages_never_end(emulator: RunningEmulator, http: httpx2.Client) -> None:
    ids = [http.post(JOBS, json=JOB_BODY).json()["id"] for _ in range(3)]
    emulator.update_config(fault_rate=1.0, fault_pool=[Fault(kind="endless_pages", path=JOBS)])
    seen: list[str] = []
    for page in range(4):
        body = http.get(JOBS, params={"page": page, "page_size": 2}).json()
        assert len(body["data"]) == 2  # always full
        assert body["total"] == (page + 2) * 2  # always one more page
        seen += [job["id"] for job in body["data"]]
    newest_first = ids[::-1]
    assert seen == [newest_first[index % 3] for index in range(8)]  # the jobs again, in turn
    assert http.get(f"{JOBS}/{ids[0]}").json()["id"] == ids[0]  # a job is served normally
    emulator.update_config(fault_rate=0.0)
    assert http.get(JOBS, params={"page": 1, "page_size": 2}).json()["total"] == 3
