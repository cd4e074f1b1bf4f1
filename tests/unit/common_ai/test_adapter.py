"""The common-ai adapter's translations, without a server: request lines, limits, statuses,
result lines, outputs and the orphan choice. tests/integration/common_ai runs it against the
emulator, tests/integration/dags runs common-ai's operator on it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from airflow.providers.common.ai.batch.base import BatchRequest, BatchState, RawResultItem
from airflow.providers.common.ai.batch.output_schema import (
    build_output_spec,
    validate_extracted_output,
)
from airflow.providers.common.ai.exceptions import (
    LLMBatchInputError,
    LLMBatchLimitExceededError,
    LLMBatchModelMismatchError,
)
from pydantic import BaseModel
from pytest_mock import MockerFixture

from airflow_provider_mistral_batch.batch.output_spec import output_spec
from airflow_provider_mistral_batch.common_ai.adapter import (
    MistralBatchAdapter,
    batch_state,
    newest_orphan,
    request_lines,
    result_item,
    timeout_hours,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.hooks.http.streams import (
    MAX_LINE_BYTES,
    BadLineHandler,
    jsonl_lines,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchResultLine
from airflow_provider_mistral_batch.utils.redact import redact

KEY = "0123456789abcdef"


class Sentiment(BaseModel):
    label: str
    score: float


def _adapter() -> MistralBatchAdapter:
    return MistralBatchAdapter(api_key="sk-unit-tests", base_url="http://127.0.0.1:9")


def _lines(requests: list[BatchRequest], **kwargs: Any) -> list[dict[str, Any]]:
    options: dict[str, Any] = {
        "model": "mistral-small-latest",
        "key": KEY,
        "directive": {},
        "system_prompt": "",
        "max_tokens": 1024,
        "request_params": None,
        "resolve": _adapter().resolve_request_model,
    }
    options.update(kwargs)
    raw = list(request_lines(requests, **options))
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in raw)
    return [json.loads(line) for line in raw]


def test_each_request_is_a_chat_body_with_its_model_and_a_numbered_custom_id() -> None:
    lines = _lines(
        [
            {"prompt": "a"},
            {"prompt": "b", "system_prompt": "own", "max_tokens": 7},
            {"prompt": "c", "model": "mistral:mistral-large-latest"},
        ],
        system_prompt="be brief",
    )
    assert [line["custom_id"] for line in lines] == [f"{KEY}-0", f"{KEY}-1", f"{KEY}-2"]
    assert lines[0]["body"] == {
        "model": "mistral-small-latest",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "a"},
        ],
        "max_tokens": 1024,
    }
    assert lines[1]["body"]["messages"][0] == {"role": "system", "content": "own"}
    assert lines[1]["body"]["max_tokens"] == 7
    assert lines[2]["body"]["model"] == "mistral-large-latest"
    assert _lines([{"prompt": "a"}], max_tokens=None)[0]["body"] == {
        "model": "mistral-small-latest",
        "messages": [{"role": "user", "content": "a"}],
    }


def test_parameters_never_replace_the_keys_the_adapter_manages() -> None:
    directive = _adapter().build_output_directive(build_output_spec(Sentiment))
    body = _lines(
        [{"prompt": "a", "params": {"temperature": 0.5, "model": "x", "response_format": {}}}],
        directive=directive,
        request_params={"temperature": 0.1, "top_p": 0.9, "messages": [], "max_tokens": 1},
    )[0]["body"]
    assert body["temperature"] == 0.5  # the request's own params win over the batch's
    assert body["top_p"] == 0.9
    assert body["model"] == "mistral-small-latest"
    assert body["messages"] == [{"role": "user", "content": "a"}]
    assert body["max_tokens"] == 1024
    assert body["response_format"] == directive["response_format"]
    # For a text output the adapter asks for no format: one given in params stays.
    text = _lines([{"prompt": "a", "params": {"response_format": {"type": "json_object"}}}])
    assert text[0]["body"]["response_format"] == {"type": "json_object"}


def test_a_request_naming_another_providers_model_is_refused() -> None:
    with pytest.raises(LLMBatchModelMismatchError, match="Request 1 sets model='openai:gpt-5'"):
        _lines([{"prompt": "a"}, {"prompt": "b", "model": "openai:gpt-5"}])


def test_the_directive_is_the_provider_operators_one() -> None:
    adapter = _adapter()
    assert adapter.build_output_directive(build_output_spec(str)) == {}
    for output_type in (Sentiment, list[int]):
        directive = adapter.build_output_directive(build_output_spec(output_type))
        assert directive == {"response_format": output_spec(output_type).response_format()}
    directive = adapter.build_output_directive(build_output_spec(Sentiment))
    assert directive["response_format"]["json_schema"]["name"] == "Sentiment"
    assert directive["response_format"]["json_schema"]["schema"] == Sentiment.model_json_schema()


class _Small(MistralBatchAdapter):
    max_requests: ClassVar[int] = 3
    max_payload_bytes: ClassVar[int] = 600


def _validate(adapter: MistralBatchAdapter, requests: list[BatchRequest], **kw: Any) -> None:
    spec = kw.pop("output_spec", build_output_spec(str))
    adapter.validate_requests(
        requests, model="mistral-small-latest", output_spec=spec, idempotency_key=KEY, **kw
    )


def test_validation_refuses_what_mistral_would() -> None:
    small = _Small(api_key="sk-unit-tests")
    _validate(small, [{"prompt": "a"}] * 3)
    with pytest.raises(LLMBatchLimitExceededError, match="at most 3 requests; got 4"):
        _validate(small, [{"prompt": "a"}] * 4)
    # The schema is repeated in every line: a typed batch reaches the size limit sooner.
    _validate(small, [{"prompt": "a"}] * 3)
    with pytest.raises(LLMBatchLimitExceededError, match=r"at most 600 bytes.*at request 2 of 2"):
        _validate(small, [{"prompt": "a"}] * 2, output_spec=build_output_spec(Sentiment))
    with pytest.raises(LLMBatchModelMismatchError):
        _validate(_adapter(), [{"prompt": "a", "model": "anthropic:claude"}])
    with pytest.raises(LLMBatchLimitExceededError, match="64-character limit"):
        _adapter().validate_requests(
            [{"prompt": "a"}],
            model="m",
            output_spec=build_output_spec(str),
            idempotency_key="k" * 64,
        )
    # Several Mistral models in one job are fine: each body names its own.
    _validate(_adapter(), [{"prompt": "a"}, {"prompt": "b", "model": "mistral:codestral-latest"}])


def test_the_size_checked_is_the_size_sent() -> None:
    requests: list[BatchRequest] = [{"prompt": "p" * 50}] * 4
    spec = build_output_spec(Sentiment)
    directive = _adapter().build_output_directive(spec)
    sent = sum(
        len(line)
        for line in request_lines(
            requests,
            model="mistral-small-latest",
            key=KEY,
            directive=directive,
            system_prompt="",
            max_tokens=1024,
            request_params=None,
            resolve=_adapter().resolve_request_model,
        )
    )

    class Exact(MistralBatchAdapter):
        max_payload_bytes: ClassVar[int] = sent

    _validate(Exact(api_key="sk-unit-tests"), requests, output_spec=spec)

    class OneByteLess(MistralBatchAdapter):
        max_payload_bytes: ClassVar[int] = sent - 1

    with pytest.raises(LLMBatchLimitExceededError):
        _validate(OneByteLess(api_key="sk-unit-tests"), requests, output_spec=spec)


@pytest.mark.parametrize(
    ("window", "hours"), [("24h", 24), ("1h", 1), (" 2d ", 48), ("168H", 168), ("7d", 168)]
)
def test_completion_window_becomes_timeout_hours(window: str, hours: int) -> None:
    assert timeout_hours(window) == hours


@pytest.mark.parametrize("window", ["0h", "169h", "8d", "24", "soon", ""])
def test_a_completion_window_mistral_cannot_honour_is_refused(window: str) -> None:
    with pytest.raises(LLMBatchInputError, match="1 to 168 hours"):
        timeout_hours(window)


def _job(status: str, **fields: Any) -> BatchJob:
    values: dict[str, Any] = {
        "id": "job-1",
        "input_files": ["f"],
        "endpoint": "/v1/chat/completions",
        "errors": [],
        "status": status,
        "created_at": 1_000,
        "total_requests": 10,
        "completed_requests": 5,
        "succeeded_requests": 4,
        "failed_requests": 1,
    }
    values.update(fields)
    return BatchJob.model_validate(values)


def _state(job: BatchJob) -> BatchState:
    return batch_state(job, _adapter().hook.mask)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("QUEUED", "in_progress"),
        ("RUNNING", "in_progress"),
        ("CANCELLATION_REQUESTED", "in_progress"),
        ("SUCCESS", "completed"),
        ("FAILED", "failed"),
        ("TIMEOUT_EXCEEDED", "expired"),
        ("CANCELLED", "cancelled"),
        ("SOMETHING_NEW", "in_progress"),  # never taken for an end
    ],
)
def test_job_statuses(status: str, expected: str) -> None:
    assert _state(_job(status)).status == expected


def test_counts_give_the_unfinished_requests_to_the_jobs_end() -> None:
    assert _state(_job("RUNNING")).counts == {
        "succeeded": 4,
        "errored": 1,
        "expired": 0,
        "cancelled": 0,
    }
    assert _state(_job("TIMEOUT_EXCEEDED")).counts == {
        "succeeded": 4,
        "errored": 1,
        "expired": 5,
        "cancelled": 0,
    }
    cancelled = _state(_job("CANCELLED", total_requests=0))
    assert cancelled.counts is not None
    assert cancelled.counts["cancelled"] == 0  # never negative
    assert _state(_job("CANCELLED")).counts == {
        "succeeded": 4,
        "errored": 1,
        "expired": 0,
        "cancelled": 5,
    }


def test_a_failed_job_says_why() -> None:
    errors = [{"message": "bad line 3", "count": 2}, {"message": "no model"}]
    assert _state(_job("FAILED", errors=errors)).error_message == (
        "Mistral batch job job-1 failed: bad line 3 (x2); no model"
    )
    assert _state(_job("FAILED")).error_message == "Mistral batch job job-1 failed."
    assert _state(_job("SUCCESS", errors=errors)).error_message is None


def test_a_failed_jobs_errors_and_an_unknown_status_never_quote_the_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # common-ai logs the message, raises it and keeps it in its manifest.
    adapter = _adapter()
    errors = [{"message": "key sk-unit-tests refused"}, {"message": "Bearer sk-other-token-9"}]
    monkeypatch.setattr(adapter.hook, "get_batch_job", lambda _: _job("FAILED", errors=errors))
    assert adapter.get_batch("job-1").error_message == (
        "Mistral batch job job-1 failed: key *** refused; Bearer ***"
    )
    monkeypatch.setattr(adapter.hook, "get_batch_job", lambda _: _job("sk-unit-tests"))
    with caplog.at_level(logging.WARNING):
        assert adapter.get_batch("job-1").status == "in_progress"
    assert "unknown status ***" in caplog.text
    assert "sk-unit-tests" not in caplog.text


def _line(**fields: Any) -> BatchResultLine:
    return BatchResultLine.model_validate(fields)


def _success(content: Any, **body: Any) -> BatchResultLine:
    answer = {
        "model": "mistral-small-latest",
        "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    answer.update(body)
    return _line(custom_id=f"{KEY}-7", response={"status_code": 200, "body": answer})


def test_a_success_line() -> None:
    item = result_item(_success("hello"))
    assert item == RawResultItem(
        custom_id=f"{KEY}-7",
        index=7,
        provider_status="success",
        model="mistral-small-latest",
        usage={"input_tokens": 12, "output_tokens": 3},
        finish_reason="stop",
        error=None,
        raw="hello",
    )
    bare = result_item(_line(custom_id="a-b-0", response={"status_code": 200, "body": {}}))
    assert (bare.index, bare.usage, bare.raw, bare.model) == (0, None, None, None)


@pytest.mark.parametrize(
    ("error", "body", "message", "code"),
    [
        ({"message": "boom", "code": "injected"}, None, "boom", "injected"),
        ("plain text error", None, "plain text error", "500"),
        (None, {"message": "bad model", "code": "1500"}, "bad model", "1500"),
    ],
)
def test_an_error_line(error: Any, body: Any, message: str, code: str) -> None:
    line = _line(custom_id=f"{KEY}-3", response={"status_code": 500, "body": body}, error=error)
    item = result_item(line)
    assert item.provider_status == "errored"
    assert item.index == 3
    assert item.error == {
        "type": "provider_error",
        "message": message,
        "provider_code": code,
        "stage": "provider",
    }
    assert item.raw is None


def test_an_error_message_is_masked() -> None:
    line = _line(custom_id=f"{KEY}-0", error={"message": "bad key sk-secret-1"})
    item = result_item(line, lambda text: text.replace("sk-secret-1", "***"))
    assert item.error is not None
    assert item.error["message"] == "bad key ***"


@pytest.mark.parametrize("custom_id", [None, "nodash", f"{KEY}-x", f"{KEY}-"])
def test_a_line_not_of_this_batch_is_refused(custom_id: str | None) -> None:
    line = _line(custom_id=custom_id, response={"status_code": 200, "body": {}})
    with pytest.raises(ValueError, match="is not <key>-<index>"):
        result_item(line)


def test_outputs_text_json_and_absent() -> None:
    adapter = _adapter()
    text, typed = build_output_spec(str), build_output_spec(Sentiment)
    item = result_item(_success('{"label": "pos", "score": 0.9}'))
    assert adapter.extract_output(item, text).kind == "text"
    extracted = adapter.extract_output(item, typed)
    assert (extracted.kind, extracted.text) == ("json_text", '{"label": "pos", "score": 0.9}')
    assert validate_extracted_output(extracted, typed).value == {"label": "pos", "score": 0.9}
    chunks = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
        {"type": "text", "text": "an"},
        {"type": "text", "text": "swer"},
    ]
    assert adapter.extract_output(result_item(_success(chunks)), text).text == "answer"
    assert adapter.extract_output(result_item(_success(None)), text).kind == "absent"
    assert adapter.extract_output(result_item(_success(chunks[:1])), typed).kind == "absent"


def test_the_orphan_is_the_newest_job_with_both_tags_since_the_time() -> None:
    tags = {"idempotency_key": KEY, "input_fingerprint": "f" * 16}
    since = datetime.fromtimestamp(1_000, UTC)
    jobs = [
        _job("RUNNING", id="old", created_at=999, metadata=tags),
        _job("RUNNING", id="a", created_at=1_000, metadata=tags),
        _job("RUNNING", id="b", created_at=1_005, metadata={**tags, "extra": "x"}),
        _job(
            "RUNNING",
            id="other-input",
            created_at=1_009,
            metadata={**tags, **{"input_fingerprint": "e" * 16}},
        ),
        _job("RUNNING", id="untagged", created_at=1_010),
    ]
    found = newest_orphan(jobs, tags, since)
    assert found is not None
    assert found.id == "b"
    assert newest_orphan(jobs[:2], tags, since) is not None
    assert newest_orphan(jobs[:1], tags, since) is None
    assert newest_orphan(jobs[:1], tags, None) is not None
    assert newest_orphan(jobs[3:], tags, since - timedelta(days=1)) is None


def test_an_empty_password_falls_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, mocker: MockerFixture
) -> None:
    masked = mocker.patch("airflow.sdk.log.mask_secret")
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-from-env")
    adapter = MistralBatchAdapter(api_key=None, base_url="http://127.0.0.1:9/v1")
    assert adapter.hook.settings.api_key == "sk-from-env"
    assert adapter.hook.settings.base_url == "http://127.0.0.1:9"
    masked.assert_called_once_with("sk-from-env")
    assert MistralBatchAdapter(api_key="sk-own").hook.settings.api_key == "sk-own"
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-from env")
    with pytest.raises(MistralBatchError, match=r"^MISTRAL_API_KEY: the API key has whitespace"):
        MistralBatchAdapter(api_key="")


def test_no_key_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    with pytest.raises(MistralBatchError, match=r"llm_conn_id has no API key.*MISTRAL_API_KEY"):
        MistralBatchAdapter(api_key="  ", base_url=None)
    with pytest.raises(MistralBatchError, match="llm_conn_id: the API key has whitespace"):
        MistralBatchAdapter(api_key="sk-two words")


class _Files:
    """A stand-in for the hook's job read, to feed the adapter lines no server would send;
    the lines are read by the hook's own reader."""

    def __init__(
        self, job: BatchJob, files: dict[str, list[str | bytes]], secret: str | None = None
    ) -> None:
        self.job = job
        self.files = files
        self.secret = secret
        self.opened: list[str] = []

    def get_batch_job(self, job_id: str) -> BatchJob:
        if job_id != self.job.id:
            raise LookupError(job_id)
        return self.job

    def iter_file_lines(
        self, file_id: str, *, on_bad_line: BadLineHandler | None = None
    ) -> Iterator[str]:
        self.opened.append(file_id)
        chunks = (
            (line if isinstance(line, bytes) else line.encode()) + b"\n"
            for line in self.files[file_id]
        )
        yield from jsonl_lines(chunks, f"file {file_id}", on_bad_line=on_bad_line)

    def mask(self, text: str) -> str:
        return redact(text, [self.secret])

    def close(self) -> None:
        pass


def test_results_stream_output_then_errors_and_skip_bad_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = _success("hi").model_dump_json()
    error = _line(custom_id=f"{KEY}-1", error={"message": "x"}).model_dump_json()
    files = _Files(
        _job("SUCCESS", output_file="out", error_file="err"),
        {"out": [good, "not json", '{"custom_id": "stranger", "error": "x"}'], "err": [error]},
    )
    adapter = MistralBatchAdapter(client=files)
    results = adapter.iter_results("job-1")
    assert files.opened == []  # nothing read before the results are asked for
    with caplog.at_level(logging.WARNING):
        items = list(results)
    assert [(item.index, item.provider_status) for item in items] == [
        (7, "success"),
        (1, "errored"),
    ]
    assert files.opened == ["out", "err"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "file out line 2 is not a batch result line" in warnings[0]
    assert "'stranger' is not <key>-<index>" in warnings[1]
    with pytest.raises(LookupError):
        adapter.iter_results("no-such-job")  # raised at the call, not at the first item


def test_a_line_not_utf8_or_too_long_is_skipped_and_the_rest_still_land(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The same file comes back on every retry: a line that stopped the reading would stop
    # every later result from ever landing.
    def ok(index: int) -> str:
        return _success("hi").model_copy(update={"custom_id": f"{KEY}-{index}"}).model_dump_json()

    too_long = b"x" * (MAX_LINE_BYTES + 1)
    files = _Files(
        _job("SUCCESS", output_file="out", error_file="err"),
        {
            "out": [
                ok(0),
                b'{"custom_id": "k-1", "x": "\xff"}',
                ok(2),
                too_long,
                "not json",
                ok(5),
            ],
            "err": [b"\xfe", ok(6)],
        },
    )
    with caplog.at_level(logging.WARNING):
        items = list(MistralBatchAdapter(client=files).iter_results("job-1"))
    assert [item.index for item in items] == [0, 2, 5, 6]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert "file out line 2 is not UTF-8 text" in warnings[0]
    assert (
        "file out line 4 is longer than 67,108,864 bytes, the longest line accepted: skipped"
        in (warnings[1])
    )
    assert "file out line 5 is not a batch result line" in warnings[2]  # counted past them
    assert "file err line 1 is not UTF-8 text" in warnings[3]


def test_a_skipped_line_quoting_the_key_is_masked_in_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-echoed-secret-key"
    # The key past the quoted length's cut: masked whole before the cut, none of it shows.
    echo = "x" * 190 + secret
    files = _Files(
        _job("SUCCESS", output_file="out"),
        {"out": [f'{{"custom_id": "{secret}", "error": "x"}}', f"not json {echo}", echo]},
        secret=secret,
    )
    with caplog.at_level(logging.WARNING):
        assert list(MistralBatchAdapter(client=files).iter_results("job-1")) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "custom_id '***' is not <key>-<index>" in warnings[0]
    assert all(secret[:6] not in warning for warning in warnings), warnings
