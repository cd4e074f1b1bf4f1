"""Fake responses: every endpoint answers a plausible, deterministic body, or a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mistral_batch.models import ApiEndpoint
from emulator.tests.support import MODEL, Api
from mistral_batch_emulator.catalog import DEFAULT_MODELS
from mistral_batch_emulator.responses import RequestRejected, fake_response

KNOWN_MODELS = frozenset(DEFAULT_MODELS)

VALID: dict[ApiEndpoint, dict[str, Any]] = {
    ApiEndpoint.CHAT_COMPLETIONS: {"messages": [{"role": "user", "content": "hi"}]},
    ApiEndpoint.EMBEDDINGS: {"input": ["a", "b"]},
    ApiEndpoint.FIM_COMPLETIONS: {"prompt": "def f(", "suffix": "return 1"},
    ApiEndpoint.MODERATIONS: {"input": ["some text"]},
    ApiEndpoint.CHAT_MODERATIONS: {"input": [[{"role": "user", "content": "hi"}]]},
    ApiEndpoint.OCR: {"document": {"type": "document_url", "document_url": "https://x/y.pdf"}},
    ApiEndpoint.CLASSIFICATIONS: {"input": "text"},
    ApiEndpoint.CHAT_CLASSIFICATIONS: {"input": {"messages": [{"role": "user", "content": "a"}]}},
    ApiEndpoint.CONVERSATIONS: {"inputs": "hello"},
    ApiEndpoint.AUDIO_TRANSCRIPTIONS: {"file_url": "https://x/a.mp3"},
}

# A key each response must carry, by endpoint.
SHAPE: dict[ApiEndpoint, str] = {
    ApiEndpoint.CHAT_COMPLETIONS: "choices",
    ApiEndpoint.EMBEDDINGS: "data",
    ApiEndpoint.FIM_COMPLETIONS: "choices",
    ApiEndpoint.MODERATIONS: "results",
    ApiEndpoint.CHAT_MODERATIONS: "results",
    ApiEndpoint.OCR: "pages",
    ApiEndpoint.CLASSIFICATIONS: "results",
    ApiEndpoint.CHAT_CLASSIFICATIONS: "results",
    ApiEndpoint.CONVERSATIONS: "outputs",
    ApiEndpoint.AUDIO_TRANSCRIPTIONS: "segments",
}


def _answer(endpoint: ApiEndpoint, body: dict[str, Any], custom_id: str = "c") -> dict[str, Any]:
    return fake_response(
        endpoint,
        body,
        custom_id=custom_id,
        job_model=MODEL,
        job_agent_id=None,
        created=1,
        known_models=KNOWN_MODELS,
    )


def test_every_endpoint_is_covered() -> None:
    assert set(VALID) == set(ApiEndpoint)


@pytest.mark.parametrize("endpoint", list(ApiEndpoint), ids=lambda e: e.value)
def test_plausible_and_deterministic(endpoint: ApiEndpoint) -> None:
    body = VALID[endpoint]
    first = _answer(endpoint, body)
    assert SHAPE[endpoint] in first
    assert first == _answer(endpoint, dict(body))
    assert first != _answer(endpoint, body, custom_id="other")


@pytest.mark.parametrize("endpoint", list(ApiEndpoint), ids=lambda e: e.value)
def test_body_missing_its_main_field_is_rejected(endpoint: ApiEndpoint) -> None:
    with pytest.raises(RequestRejected) as caught:
        _answer(endpoint, {"max_tokens": 3})
    assert caught.value.message


def test_shapes_in_detail() -> None:
    embedding = _answer(ApiEndpoint.EMBEDDINGS, VALID[ApiEndpoint.EMBEDDINGS])
    assert embedding["object"] == "list"
    assert [item["index"] for item in embedding["data"]] == [0, 1]
    assert all(item["object"] == "embedding" for item in embedding["data"])
    assert all(len(item["embedding"]) == 8 for item in embedding["data"])
    assert embedding["usage"]["prompt_tokens"] > 0

    moderation = _answer(ApiEndpoint.MODERATIONS, VALID[ApiEndpoint.MODERATIONS])
    result = moderation["results"][0]
    assert set(result["categories"]) == set(result["category_scores"])

    ocr = _answer(ApiEndpoint.OCR, VALID[ApiEndpoint.OCR])
    assert ocr["pages"][0]["markdown"]
    assert ocr["usage_info"]["pages_processed"] == len(ocr["pages"])

    transcription = _answer(
        ApiEndpoint.AUDIO_TRANSCRIPTIONS, VALID[ApiEndpoint.AUDIO_TRANSCRIPTIONS]
    )
    assert transcription["text"]
    assert transcription["usage"]["total_tokens"] > 0


def test_no_model_anywhere_is_rejected() -> None:
    with pytest.raises(RequestRejected, match="model"):
        fake_response(
            ApiEndpoint.CHAT_COMPLETIONS,
            VALID[ApiEndpoint.CHAT_COMPLETIONS],
            custom_id="c",
            job_model=None,
            job_agent_id=None,
            created=1,
            known_models=KNOWN_MODELS,
        )


@pytest.mark.parametrize("endpoint", list(ApiEndpoint), ids=lambda e: e.value)
def test_every_endpoint_through_a_job(api: Api, endpoint: ApiEndpoint) -> None:
    requests = [
        {"custom_id": "good", "body": VALID[endpoint]},
        {"custom_id": "bad", "body": {"unexpected": True}},
    ]
    job = api.create_job(requests=requests, endpoint=endpoint.value)
    done = api.wait(job["id"])
    assert done["status"] == "SUCCESS"
    assert (done["succeeded_requests"], done["failed_requests"]) == (1, 1)
    outputs = {item["custom_id"]: item for item in api.job(job["id"], inline="true")["outputs"]}
    assert SHAPE[endpoint] in outputs["good"]["response"]["body"]
    assert outputs["bad"]["response"]["status_code"] == 400
    assert "requests[1]" in outputs["bad"]["error"]["message"]
