"""Property tests of the wire models, the hook that parses them, and the verdict on a job.

Jobs and files are generated from the shapes of the contract's schemas (the strategies below
are written by hand from ``tests/contract/mistral-batch-files-openapi.yaml``; the enums are
read from it), then mutated: unknown fields and enum values, nulls, missing fields, wrong
types, bodies that are not JSON. Properties:

- what the contract allows, plus unknown fields and unknown enum values, always parses;
- whatever the server sends, the hook returns a model or raises the provider's own
  :class:`MistralBatchError`, never a pydantic or any other error;
- a status is success only if it is exactly ``SUCCESS`` (and terminal only if it is one of
  the contract's four ends): an unknown or new status never passes ``judge_job``;
- any job the hook accepts survives the trigger event round trip.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from airflow_provider_mistral_batch.batch.event import make_event, parse_event
from airflow_provider_mistral_batch.batch.finish import finish_with_job
from airflow_provider_mistral_batch.batch.verdict import judge_job, judge_jobs
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchError,
    MistralBatchJobError,
)
from airflow_provider_mistral_batch.hooks.connection import ConnectionSettings
from airflow_provider_mistral_batch.hooks.http.retry import RetryPolicy
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import (
    BatchJob,
    BatchJobList,
    BatchJobStatus,
    FileList,
    FileObject,
    RetrievedFile,
)

# Deterministic and quick: the same examples on every run and in CI, nothing saved between runs.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CONTRACT = yaml.safe_load(
    (Path(__file__).parents[1] / "contract" / "mistral-batch-files-openapi.yaml").read_text(
        encoding="utf-8"
    )
)
SCHEMAS: dict[str, Any] = CONTRACT["components"]["schemas"]


def enum_of(schema: str) -> list[str]:
    return list(SCHEMAS[schema]["enum"])


@functools.cache
def contract_validator(schema: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": CONTRACT["components"]}
    )


STATUSES = enum_of("BatchJobStatus")
TERMINAL = {"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"}

# ---------------------------------------------------------------------------- strategies

# Integers as a server sends them (int64); counts past 64 bits are a separate test below.
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(max_size=12)
UUID = st.uuids().map(str)
JSON_SCALAR = (
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(TEXT, inner, max_size=2),
    max_leaves=4,
)
JSON_OBJECT = st.dictionaries(TEXT, JSON, max_size=3)


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


# BatchJob: the contract's required properties, then its optional ones (absent or present).
BATCH_ERROR = st.fixed_dictionaries({"message": TEXT}, optional={"count": INT64})
JOB_REQUIRED: dict[str, st.SearchStrategy[Any]] = {
    "id": UUID | TEXT,
    "input_files": st.lists(UUID, max_size=3),
    # A plain string in the contract; mostly the ApiEndpoint values.
    "endpoint": st.sampled_from(enum_of("ApiEndpoint")) | TEXT,
    "errors": st.lists(BATCH_ERROR, max_size=2),
    "status": st.sampled_from(STATUSES),
    "created_at": INT64,
    "total_requests": INT64,
    "completed_requests": INT64,
    "succeeded_requests": INT64,
    "failed_requests": INT64,
}
JOB_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "object": st.just("batch"),
    "metadata": nullable(JSON_OBJECT),
    "model": nullable(TEXT),
    "agent_id": nullable(TEXT),
    "output_file": nullable(UUID),
    "error_file": nullable(UUID),
    "outputs": nullable(st.lists(JSON_OBJECT, max_size=2)),
    "started_at": nullable(INT64),
    "completed_at": nullable(INT64),
}
JOBS = st.fixed_dictionaries(JOB_REQUIRED, optional=JOB_OPTIONAL)

# FileSchema / CreateFileResponse (the same shape); GetFileResponse adds a required "deleted".
FILE_REQUIRED: dict[str, st.SearchStrategy[Any]] = {
    "id": UUID,
    "object": st.just("file"),
    "bytes": INT64,
    "created_at": INT64,
    "filename": TEXT,
    "purpose": st.sampled_from(enum_of("FilePurpose")),
    "sample_type": st.sampled_from(enum_of("SampleType")),
    "source": st.sampled_from(enum_of("Source")),
}
FILE_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "num_lines": nullable(INT64),
    "mimetype": nullable(TEXT),
    "signature": nullable(TEXT),
    "expires_at": nullable(INT64),
    "visibility": nullable(st.sampled_from(enum_of("FileVisibility"))),
}
FILES = st.fixed_dictionaries(FILE_REQUIRED, optional=FILE_OPTIONAL)
RETRIEVED_FILES = st.fixed_dictionaries(
    {**FILE_REQUIRED, "deleted": st.booleans()}, optional=FILE_OPTIONAL
)

JOB_ENUMS = ("status", "endpoint")
FILE_ENUMS = ("purpose", "sample_type", "source", "visibility")
# Names an unknown field must not take: every field of any schema here.
KNOWN_FIELDS = frozenset(
    name for schema in SCHEMAS.values() for name in schema.get("properties", {})
)


@st.composite
def tolerated(
    draw: st.DrawFn, shapes: st.SearchStrategy[dict[str, Any]], enums: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A contract-valid object plus what a client must tolerate: unknown fields and unknown
    enum values. Returns the object and the unknown fields added to it."""
    doc = draw(shapes)
    unknown_names = TEXT.filter(lambda key: key not in KNOWN_FIELDS)
    extra = draw(st.dictionaries(unknown_names, JSON, max_size=3))
    doc.update(extra)
    for field in enums:
        if field in doc and draw(st.booleans()):
            doc[field] = draw(TEXT)
    return doc, extra


@st.composite
def mutated(
    draw: st.DrawFn, shapes: st.SearchStrategy[dict[str, Any]], enums: tuple[str, ...]
) -> dict[str, Any]:
    """A tolerated object with a few fields dropped, nulled or replaced by any JSON value."""
    doc, _ = draw(tolerated(shapes, enums))
    for change in draw(st.lists(st.sampled_from(["drop", "null", "retype"]), max_size=3)):
        if not doc:
            break
        key = draw(st.sampled_from(sorted(doc)))
        if change == "drop":
            del doc[key]
        elif change == "null":
            doc[key] = None
        else:
            doc[key] = draw(JSON)
    return doc


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def bodies(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Response bodies: mostly the documents as JSON; also any JSON value, and any bytes."""
    return documents.map(as_json) | JSON.map(as_json) | st.binary(max_size=40)


# ---------------------------------------------------------------------------- a hook, no network

BASE_URL = "https://api.mistral.test"


@contextmanager
def hook_answering(
    answer: Callable[[httpx2.Request], httpx2.Response],
) -> Iterator[MistralBatchHook]:
    """A hook whose every request is answered by ``answer`` in process (one attempt each)."""
    hook = MistralBatchHook("mistral_properties", retry_policy=RetryPolicy(max_attempts=1))
    hook._settings = ConnectionSettings(base_url=BASE_URL, api_key="sk-property-tests")
    hook._client = httpx2.Client(base_url=BASE_URL, transport=httpx2.MockTransport(answer))
    with hook:
        yield hook


def answering_with(body: bytes) -> Callable[[httpx2.Request], httpx2.Response]:
    return lambda request: httpx2.Response(
        200, content=body, headers={"Content-Type": "application/json"}
    )


def call_or_provider_error(
    model: type[BaseModel], body: bytes, method: str, path: str, call: Callable[[], Any]
) -> Any:
    """The hook call's result; a refused body must raise MistralBatchError naming the call,
    exactly when the model itself refuses the body. Returns None when it was refused."""
    try:
        model.model_validate_json(body)
    except ValidationError:
        model_refuses = True
    else:
        model_refuses = False
    result, error = outcome_of(call)
    if error is not None:
        assert not isinstance(error, MistralAPIError), "a 200 answer is not an API error"
        assert str(error).startswith(f"unexpected response to {method} {path}: "), str(error)
        assert model_refuses, f"the hook refused a body its model accepts: {error}"
        event(f"{model.__name__} refused")
        return None
    assert not model_refuses, "the hook accepted a body its model refuses"
    event(f"{model.__name__} accepted")
    return result


def outcome_of(
    call: Callable[[], Any], expected: type[Exception] = MistralBatchError
) -> tuple[Any, Exception | None]:
    """``(result, None)``, or ``(None, error)`` when ``call`` raised ``expected``; any other
    exception fails the test."""
    try:
        return call(), None
    except expected as exc:
        return None, exc


# ---------------------------------------------------------------------------- the strategies


@pytest.mark.parametrize(
    ("schema", "required", "optional"),
    [
        ("BatchJob", JOB_REQUIRED, JOB_OPTIONAL),
        ("FileSchema", FILE_REQUIRED, FILE_OPTIONAL),
        ("CreateFileResponse", FILE_REQUIRED, FILE_OPTIONAL),
        ("GetFileResponse", {**FILE_REQUIRED, "deleted": st.booleans()}, FILE_OPTIONAL),
    ],
)
def test_strategies_have_the_contracts_fields(
    schema: str,
    required: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]],
) -> None:
    assert set(required) == set(SCHEMAS[schema]["required"])
    assert set(required) | set(optional) == set(SCHEMAS[schema]["properties"])


@PROPERTY
@given(job=JOBS, file=FILES, retrieved=RETRIEVED_FILES)
def test_generated_objects_are_contract_valid(
    job: dict[str, Any], file: dict[str, Any], retrieved: dict[str, Any]
) -> None:
    contract_validator("BatchJob").validate(job)
    contract_validator("FileSchema").validate(file)
    contract_validator("GetFileResponse").validate(retrieved)


# ---------------------------------------------------------------------------- statuses


STATUS_STRINGS = (
    st.text()
    | st.sampled_from(STATUSES)
    | st.sampled_from(STATUSES).map(str.lower)
    | st.sampled_from(STATUSES).map(lambda status: f" {status}")
    | st.sampled_from([member.name for member in BatchJobStatus]).map(str.title)
)


@PROPERTY
@given(value=STATUS_STRINGS)
def test_only_success_is_success_and_only_the_four_ends_are_terminal(value: str) -> None:
    status = BatchJobStatus(value)
    assert status == value
    assert status.is_known is (value in STATUSES)
    assert status.is_success is (value == "SUCCESS")
    assert status.is_terminal is (value in TERMINAL)


@PROPERTY
@given(job=JOBS, status=STATUS_STRINGS, max_failed_ratio=nullable(st.floats(0.0, 1.0)))
def test_an_unknown_status_never_passes_judge_job(
    job: dict[str, Any], status: str, max_failed_ratio: float | None
) -> None:
    parsed = BatchJob.model_validate({**job, "status": status})
    verdict = judge_job(parsed, max_failed_ratio)
    assert parsed.is_terminal is (status in TERMINAL)
    if status != "SUCCESS":
        assert not verdict.succeeded
        assert not judge_jobs([parsed], max_failed_ratio).succeeded


# ---------------------------------------------------------------------------- models


@PROPERTY
@given(case=tolerated(JOBS, JOB_ENUMS))
def test_a_job_with_unknown_fields_and_enum_values_parses_and_round_trips(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    doc, extra = case
    job = BatchJob.model_validate(doc)
    assert job.model_extra == extra
    for field in ("id", "status", "endpoint", "created_at", "failed_requests", "error_file"):
        assert job.model_dump(mode="json")[field] == doc.get(field)
    assert job.status.is_success is (doc["status"] == "SUCCESS")
    assert job.is_terminal is (doc["status"] in TERMINAL)
    assert BatchJob.model_validate_json(job.model_dump_json()) == job


@PROPERTY
@given(
    file=tolerated(FILES, FILE_ENUMS),
    retrieved=tolerated(RETRIEVED_FILES, FILE_ENUMS),
    listing=st.lists(FILES, max_size=3),
    total=nullable(INT64),
)
def test_files_with_unknown_fields_and_enum_values_parse_and_round_trip(
    file: tuple[dict[str, Any], dict[str, Any]],
    retrieved: tuple[dict[str, Any], dict[str, Any]],
    listing: list[dict[str, Any]],
    total: int | None,
) -> None:
    for (doc, extra), model in ((file, FileObject), (retrieved, RetrievedFile)):
        parsed = model.model_validate(doc)
        assert parsed.model_extra == extra
        dumped = parsed.model_dump(mode="json")
        for field in ("id", "bytes", *FILE_ENUMS):
            assert dumped[field] == doc.get(field)
        assert model.model_validate_json(parsed.model_dump_json()) == parsed
    page = FileList.model_validate({"data": listing, "object": "list", "total": total})
    assert [each.id for each in page.data] == [each["id"] for each in listing]


# ---------------------------------------------------------------------------- the hook


@PROPERTY
@given(body=bodies(mutated(JOBS, JOB_ENUMS)))
def test_the_hook_returns_a_job_or_a_provider_error_whatever_the_server_sends(
    body: bytes,
) -> None:
    with hook_answering(answering_with(body)) as hook:
        job = call_or_provider_error(
            BatchJob, body, "GET", "/v1/batch/jobs/j-1", lambda: hook.get_batch_job("j-1")
        )
        call_or_provider_error(
            BatchJob,
            body,
            "POST",
            "/v1/batch/jobs/j-1/cancel",
            lambda: hook.cancel_batch_job("j-1"),
        )
    if job is not None:
        assert job.status.is_success is (json.loads(body)["status"] == "SUCCESS")


@PROPERTY
@given(
    jobs=st.lists(tolerated(JOBS, JOB_ENUMS).map(lambda case: case[0]), max_size=3)
    | st.lists(mutated(JOBS, JOB_ENUMS), max_size=3),
    total=INT64 | JSON,
    whole=st.booleans(),
)
def test_a_job_page_is_parsed_or_a_provider_error(
    jobs: list[dict[str, Any]], total: Any, whole: bool
) -> None:
    page: dict[str, Any] = {"data": jobs, "object": "list", "total": total}
    if not whole:
        del page["total"]
    body = as_json(page)
    with hook_answering(answering_with(body)) as hook:
        call_or_provider_error(
            BatchJobList, body, "GET", "/v1/batch/jobs", lambda: hook.list_batch_jobs_page()
        )


@PROPERTY
@given(
    retrieved=bodies(mutated(RETRIEVED_FILES, FILE_ENUMS)),
    uploaded=bodies(mutated(FILES, FILE_ENUMS)),
)
def test_the_hook_returns_a_file_or_a_provider_error_whatever_the_server_sends(
    retrieved: bytes, uploaded: bytes
) -> None:
    with hook_answering(answering_with(retrieved)) as hook:
        call_or_provider_error(
            RetrievedFile, retrieved, "GET", "/v1/files/f-1", lambda: hook.get_file("f-1")
        )
    with hook_answering(answering_with(uploaded)) as hook:
        call_or_provider_error(
            FileObject,
            uploaded,
            "POST",
            "/v1/files",
            lambda: hook.upload_file(io.BytesIO(b"{}\n"), filename="in.jsonl"),
        )


@PROPERTY
@given(files=st.lists(mutated(FILES, FILE_ENUMS), max_size=3), total=nullable(INT64) | JSON)
def test_a_file_listing_is_walked_or_a_provider_error(files: list[Any], total: Any) -> None:
    first = as_json({"data": files, "object": "list", "total": total})

    def answer(request: httpx2.Request) -> httpx2.Response:
        # Page 0 is the generated one; any later page is empty, so every walk ends.
        page = first if request.url.params.get("page") == "0" else b'{"data":[],"object":"list"}'
        return httpx2.Response(200, content=page)

    with hook_answering(answer) as hook:
        listed = call_or_provider_error(
            FileList, first, "GET", "/v1/files", lambda: list(hook.list_files())
        )
    if listed is not None:
        assert [each.id for each in listed] == [each["id"] for each in files]


# ---------------------------------------------------------------------------- the verdict


class _TaskInstance:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@PROPERTY
@given(
    docs=st.lists(tolerated(JOBS, JOB_ENUMS), min_size=1, max_size=3),
    max_failed_ratio=nullable(st.floats(0.0, 1.0)),
    missing=st.integers(0, 10**6),
)
def test_a_verdict_passes_only_success_jobs_and_never_crashes(
    docs: list[tuple[dict[str, Any], dict[str, Any]]],
    max_failed_ratio: float | None,
    missing: int,
) -> None:
    jobs = [BatchJob.model_validate(doc) for doc, _ in docs]
    first = jobs[0]
    verdict = judge_job(first, max_failed_ratio)
    if verdict.succeeded:
        assert first.status is BatchJobStatus.SUCCESS
    if first.status is BatchJobStatus.SUCCESS and first.failed_requests <= 0:
        assert verdict.succeeded
    if judge_jobs(jobs, max_failed_ratio, missing).succeeded:
        assert all(job.status is BatchJobStatus.SUCCESS for job in jobs)
    # As the task sees it: XComs pushed first, then success or the provider's job error.
    ti = _TaskInstance()
    summary, error = outcome_of(
        lambda: finish_with_job({"ti": ti}, first, max_failed_ratio, logging.getLogger(__name__)),
        MistralBatchJobError,
    )
    if error is not None:
        assert not verdict.succeeded
        assert str(error) == verdict.message
    else:
        assert verdict.succeeded
        assert summary["status"] == docs[0][0]["status"]
        json.dumps(summary)
    assert ti.xcom == {"output_file": first.output_file, "error_file": first.error_file}


@PROPERTY
@given(case=tolerated(JOBS, JOB_ENUMS), kind=st.sampled_from(["terminal", "timeout", "error"]))
def test_any_accepted_job_survives_the_trigger_event(
    case: tuple[dict[str, Any], dict[str, Any]], kind: Any
) -> None:
    job = BatchJob.model_validate(case[0])
    event = make_event(kind, job.id, job, message="m")
    # The triggerer stores the event as JSON.
    event = json.loads(json.dumps(event))
    try:
        payload = parse_event(event)
    except MistralBatchError:
        assert kind == "terminal"
        assert not job.is_terminal
        return
    assert kind != "terminal" or job.is_terminal
    assert payload.job is not None
    assert payload.job.model_dump(exclude={"outputs"}) == job.model_dump(exclude={"outputs"})


# ---------------------------------------------------------------------------- regressions
# Bugs these properties found, each test keeping its minimal failing example (@example).

HUGE = 2**1024  # an integer past the float range: JSON allows it
INT64_MAX = 2**63 - 1
COUNTS = ("total_requests", "completed_requests", "succeeded_requests", "failed_requests")


def job_with_counts(total: int, done: int, failed: int) -> dict[str, Any]:
    return {
        "id": "j",
        "input_files": [],
        "endpoint": "/v1/embeddings",
        "errors": [],
        "status": "SUCCESS",
        "created_at": 0,
        "total_requests": total,
        "completed_requests": done,
        "succeeded_requests": 0,
        "failed_requests": failed,
    }


@PROPERTY
@given(
    total=st.sampled_from([0, 1, INT64_MAX]) | INT64,
    done=st.sampled_from([0, INT64_MAX]) | INT64,
    failed=st.sampled_from([0, INT64_MAX]) | INT64,
)
@example(total=1, done=INT64_MAX, failed=INT64_MAX)
def test_any_64_bit_request_counts_are_judged_without_crashing(
    total: int, done: int, failed: int
) -> None:
    job = BatchJob.model_validate(job_with_counts(total, done, failed))
    progress = job.progress
    assert progress is None or 0.0 <= progress <= 1.0
    judge_job(job, 0.5)
    judge_jobs([job, job], 0.5)


@PROPERTY
@given(
    field=st.sampled_from(COUNTS),
    count=st.integers(min_value=INT64_MAX + 1, max_value=HUGE)
    | st.integers(min_value=-HUGE, max_value=-(2**63) - 1),
)
@example(field="failed_requests", count=HUGE)  # was an OverflowError in judge_job and progress
def test_a_count_past_64_bits_is_an_unexpected_response(field: str, count: int) -> None:
    body = as_json({**job_with_counts(1, 0, 0), field: count})
    with pytest.raises(ValidationError):
        BatchJob.model_validate_json(body)
    with hook_answering(answering_with(body)) as hook, pytest.raises(MistralBatchError) as caught:
        hook.get_batch_job("j-1")
    assert not isinstance(caught.value, MistralAPIError)
    assert str(caught.value).startswith(f"unexpected response to GET /v1/batch/jobs/j-1: {field}: ")


# ---------------------------------------------------------------------------- bytes: null


def contract_example(path: str, method: str) -> Any:
    """The example response the contract gives for an operation."""
    content = CONTRACT["paths"][path][method]["responses"]["200"]["content"]
    return content["application/json"]["examples"]["userExample"]["value"]


def test_the_hook_takes_the_contracts_own_upload_example_with_null_bytes() -> None:
    # The schema says integer, every example of the contract says null: an upload that
    # succeeded must not fail on reading its answer.
    example = contract_example("/v1/files", "post")
    assert example["bytes"] is None
    with hook_answering(answering_with(as_json(example))) as hook:
        uploaded = hook.upload_file(io.BytesIO(b'{"body": {}}\n'), filename="in.jsonl")
    assert uploaded.id == example["id"]
    assert uploaded.bytes is None
    assert uploaded.num_lines == 2
