"""Error responses become exceptions with the status and the server's message, never the key."""

from __future__ import annotations

import httpx2
import pytest

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralNotFoundError,
    MistralRateLimitError,
    MistralServerError,
    MistralValidationError,
)
from airflow_provider_mistral_batch.hooks.http.errors import raise_for_response

KEY = "sk-very-secret-key"


def _response(status: int, path: str, **kwargs: object) -> httpx2.Response:
    request = httpx2.Request(
        "GET", f"https://api.mistral.ai{path}", headers={"Authorization": f"Bearer {KEY}"}
    )
    return httpx2.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


def test_success_does_not_raise() -> None:
    raise_for_response(_response(200, "/v1/files", json={}))


@pytest.mark.parametrize(
    ("status", "body", "error_class", "fragment"),
    [
        (
            401,
            {"detail": "Unauthorized"},
            MistralAuthenticationError,
            "API key is missing or wrong",
        ),
        (404, {"message": "nope"}, MistralNotFoundError, "batch job 'job-42' was not found"),
        (
            422,
            {"detail": [{"loc": ["body", "timeout_hours"], "msg": "too big", "type": "x"}]},
            MistralValidationError,
            "timeout_hours: too big",
        ),
        (
            429,
            {"object": "error", "message": "Rate limit exceeded"},
            MistralRateLimitError,
            "Rate limit",
        ),
        (503, {"message": "overloaded"}, MistralServerError, "overloaded"),
        (418, {"message": "teapot"}, MistralAPIError, "teapot"),
    ],
)
def test_error_statuses(
    status: int, body: dict[str, object], error_class: type[MistralAPIError], fragment: str
) -> None:
    with pytest.raises(error_class) as caught:
        raise_for_response(_response(status, "/v1/batch/jobs/job-42", json=body))
    assert caught.value.status_code == status
    assert fragment in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.__dict__)


def test_plain_text_body_and_retry_after_header() -> None:
    response = _response(429, "/v1/files", text="busy", headers={"Retry-After": "2"})
    with pytest.raises(MistralRateLimitError) as caught:
        raise_for_response(response)
    assert caught.value.message == "busy"
    assert caught.value.retry_after == 2.0


def test_file_not_found_names_the_file() -> None:
    with pytest.raises(MistralNotFoundError, match="file 'f-9' was not found"):
        raise_for_response(_response(404, "/v1/files/f-9/content", json={"detail": "Not Found"}))


def test_api_error_survives_pickling() -> None:
    import pickle

    error = MistralRateLimitError(429, "slow", method="GET", path="/v1/files", retry_after=3.0)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is MistralRateLimitError
    assert (copy.status_code, copy.message, copy.path, copy.retry_after) == (
        429,
        "slow",
        "/v1/files",
        3.0,
    )
    assert str(copy) == str(error)


def test_a_success_with_an_unexpected_body_is_a_clear_error() -> None:
    from airflow_provider_mistral_batch.exceptions import MistralBatchError
    from airflow_provider_mistral_batch.hooks.http.errors import parse_response
    from airflow_provider_mistral_batch.models import BatchJob

    response = _response(200, "/v1/batch/jobs/j1", json={"hello": "proxy page"})
    with pytest.raises(MistralBatchError, match=r"unexpected response to GET /v1/batch/jobs/j1: "):
        parse_response(BatchJob, response)


def test_listing_trusts_the_total_over_a_short_page() -> None:
    from airflow_provider_mistral_batch.hooks.mistral_batch import _is_last_page
    from airflow_provider_mistral_batch.models import FileList

    file = {
        "id": "f",
        "bytes": 1,
        "created_at": 1,
        "filename": "a",
        "purpose": "batch",
        "sample_type": "batch_request",
        "source": "upload",
    }
    capped = FileList(data=[file] * 50, object="list", total=120)
    assert not _is_last_page(capped, seen=50, page_size=100), "server capped the page at 50"
    assert _is_last_page(capped, seen=120, page_size=100)
    no_total = FileList(data=[file] * 50, object="list", total=None)
    assert _is_last_page(no_total, seen=50, page_size=100)
    assert _is_last_page(FileList(data=[], object="list", total=999), seen=3, page_size=100)


@pytest.mark.parametrize(
    ("status", "kwargs"),
    [
        (400, {"json": {"message": f"invalid token Bearer {KEY}"}}),
        (401, {"json": {"detail": f"bad key {KEY}"}}),
        (403, {"json": {"error": {"message": f"Authorization: Bearer {KEY} refused"}}}),
        (422, {"json": {"detail": [{"loc": ["header"], "msg": f"got {KEY}", "type": "x"}]}}),
        (500, {"text": f"upstream said: authorization=Bearer {KEY}"}),
        (404, {"json": {"message": "nope", "request_id": f"rid-{KEY}"}}),
        (502, {"text": "proxy saw Bearer eyJhbGciOiJIUzI1NiJ9.another-token-123"}),
    ],
)
def test_an_echoed_key_is_masked_in_the_error(status: int, kwargs: dict[str, object]) -> None:
    """A server or proxy that echoes the Authorization header does not put the key (or any
    bearer token) into the error's message, fields or pickled form."""
    import pickle

    with pytest.raises(MistralAPIError) as caught:
        raise_for_response(_response(status, "/v1/batch/jobs/job-42", **kwargs))
    error = caught.value
    for text in (
        str(error),
        error.message,
        error.request_id or "",
        repr(pickle.loads(pickle.dumps(error))),
    ):
        assert KEY not in text
        assert "eyJhbGciOiJIUzI1NiJ9" not in text
    assert "***" in str(error)
