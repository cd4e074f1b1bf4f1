"""Bench: every kind of bad input a user can give, where it is refused and what the user reads.

Tries bad arguments, bad request data, bad files, bad ids, bad destinations and bad
connections on ``MistralBatchOperator``, ``MistralBatchJobSensor``,
``MistralBatchCancelJobOperator``, ``MistralBatchResultsOperator`` and ``MistralBatchHook``,
against the emulator, and prints a markdown table: the input, where it is refused, whether
it is retried, and the message the user sees (temporary paths, the emulator's port and ids
replaced by placeholders).

- DAG parse: the operator is built inside a DAG, as a DAG file does; the error is what the
  DAG's import error shows.
- Task: every other operator case is its own DAG, run with ``dag.test()`` with ``retries=1``
  and ``retry_delay=0``: "retried" says whether Airflow ran a second try. The message is the
  exception the task failed with (``on_failure_callback``), or for a task that succeeded, the
  error its results file holds for the request.
- Hook: the method is called directly; "retried" counts the HTTP attempts the emulator saw.

Where: "nothing sent" means the emulator saw no request during the case; a case that only
read (a look-up) before refusing says so; "API" names the call the emulator refused.

    .venv/bin/python bench/bad_inputs.py [--only KEYWORD]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MODEL = "mistral-small-latest"
# The emulator refuses uploads above this (413), so that "too big a file" costs 100 kB here.
EMULATOR_MAX_FILE_BYTES = 64_000
UNKNOWN_UUID = "6b0c7a8e-0000-4000-8000-00000000dead"
CALLBACK_LOG_ENV = "BAD_INPUTS_CALLBACKS"
FIXTURES_ENV = "BAD_INPUTS_FIXTURES"
BENCH_DIR_ENV = "BAD_INPUTS_BENCH_DIR"

DAG_SOURCE = '''\
"""DAGs of bench/bad_inputs.py: one per bad-input case, built from the bench's case table."""

from __future__ import annotations

import os
import sys
from datetime import datetime

from airflow.sdk import DAG

sys.path.insert(0, os.environ["BAD_INPUTS_BENCH_DIR"])
from bad_inputs import load_fixtures, task_cases  # noqa: E402

for _case in task_cases(load_fixtures()):
    with DAG(
        dag_id=f"bad_input_{_case.key}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        render_template_as_native_obj=_case.native,
    ) as _dag:
        _case.build()
    globals()[_dag.dag_id] = _dag
'''


# ---------------------------------------------------------------------------- the cases


def chat(n: int = 2, prefix: str = "r") -> list[dict[str, Any]]:
    body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    return [{"custom_id": f"{prefix}{i}", "body": body} for i in range(n)]


@dataclass
class Case:
    """One bad input: ``build`` makes the operator (parse and task cases) or calls the hook."""

    key: str
    label: str
    kind: str  # "parse", "task" or "hook"
    build: Callable[[], Any]
    native: bool = False


def _task_defaults() -> dict[str, Any]:
    return {
        "task_id": "t",
        "retries": 1,
        "retry_delay": timedelta(seconds=0),
        "on_failure_callback": record_callback,
        "on_retry_callback": record_callback,
    }


def record_callback(context: Any) -> None:
    """Write the exception a try ended with, for the bench to read after ``dag.test()``."""
    ti = context["ti"]
    exc = context.get("exception")
    line = {
        "dag_id": ti.dag_id,
        "try": ti.try_number,
        "type": type(exc).__name__,
        "message": str(exc),
    }
    with Path(os.environ[CALLBACK_LOG_ENV]).open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def parse_cases() -> list[Case]:
    """Arguments refused when the operator is built, i.e. when the DAG file is parsed."""
    from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
    from airflow_provider_mistral_batch.operators.cancel import MistralBatchCancelJobOperator
    from airflow_provider_mistral_batch.operators.results import MistralBatchResultsOperator
    from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor

    def op(**kwargs: Any) -> Callable[[], Any]:
        kwargs.setdefault("endpoint", CHAT)
        kwargs.setdefault("model", MODEL)
        if not {"requests", "input_path", "input_files"} & kwargs.keys():
            kwargs["requests"] = chat()
        kwargs = {key: value for key, value in kwargs.items() if value is not _NONE}
        return lambda: MistralBatchOperator(task_id="t", **kwargs)

    def subclass(**attributes: Any) -> Callable[[], Any]:
        made = type("Custom", (MistralBatchOperator,), attributes)
        return lambda: made(task_id="t", endpoint=CHAT, model=MODEL, requests=chat())

    def sensor(**kwargs: Any) -> Callable[[], Any]:
        return lambda: MistralBatchJobSensor(task_id="t", job_id=UNKNOWN_UUID, **kwargs)

    def cancel(**kwargs: Any) -> Callable[[], Any]:
        return lambda: MistralBatchCancelJobOperator(task_id="t", job_id=UNKNOWN_UUID, **kwargs)

    def parse(key: str, label: str, build: Callable[[], Any]) -> Case:
        return Case(key, label, "parse", build)

    return [
        parse("two_inputs", "operator: both `requests` and `input_path`",
              op(requests=chat(), input_path="/data/in.jsonl")),
        parse("timeout_0", "operator: `timeout=0`", op(timeout=0)),
        parse("timeout_169h", "operator: `timeout=timedelta(hours=169)`",
              op(timeout=timedelta(hours=169))),
        parse("timeout_90min", "operator: `timeout=timedelta(minutes=90)`",
              op(timeout=timedelta(minutes=90))),
        parse("timeout_str", "operator: `timeout='86400'`", op(timeout="86400")),
        parse("timeout_hours_old", "operator: `timeout_hours=24` (an earlier release's argument)",
              op(timeout_hours=24)),
        parse("poll_str", "operator: `poll_interval='30'`", op(poll_interval="30")),
        parse("poll_inf", "operator: `poll_interval=inf`", op(poll_interval=math.inf)),
        parse("poll_negative", "operator: `poll_interval=-1`", op(poll_interval=-1)),
        parse("poll_zero", "operator: `poll_interval=0`", op(poll_interval=0)),
        parse("ratio_high", "operator: `max_failed_ratio=1.5`", op(max_failed_ratio=1.5)),
        parse("poll_none", "operator: `poll_interval=None`", op(poll_interval=None)),
        parse("wait_timeout_old", "operator: `wait_timeout=600` (an earlier release's argument)",
              op(wait_timeout=600)),
        parse("errors_zero", "operator subclass: `max_consecutive_errors = 0`",
              subclass(max_consecutive_errors=0)),
        parse("shard_zero", "operator subclass: `max_requests_per_job = 0`",
              subclass(max_requests_per_job=0)),
        parse("shard_too_big", "operator subclass: `max_requests_per_job = 2_000_000`",
              subclass(max_requests_per_job=2_000_000)),
        parse("results_no_wait", "operator: `results_path` with `wait_for_completion=False`",
              op(results_path="/tmp/r.jsonl", wait_for_completion=False)),  # noqa: S108
        parse("include_request_old", "operator: `results_include_request=True` (only the results "
              "operator has it now)", op(results_include_request=True)),
        parse("job_kwargs_owned", "operator: `job_kwargs={'model': 'x'}` (the operator's own)",
              op(job_kwargs={"model": "x"})),
        parse("job_kwargs_unknown", "operator: `job_kwargs={'agentid': 'a'}` (no such field)",
              op(job_kwargs={"agentid": "a"})),
        parse("metadata_list", "operator: `metadata=['team', 'data']` (not a mapping)",
              op(metadata=["team", "data"])),
        parse("metadata_str", "operator: `metadata='team=data'`", op(metadata="team=data")),
        parse("metadata_reserved", "operator: metadata key `airflow_task_key` (reserved)",
              op(metadata={"airflow_task_key": "mine"})),
        parse("metadata_key_long", "operator: metadata key of 33 characters",
              op(metadata={"k" * 33: "v"})),
        parse("metadata_value_empty", "operator: metadata value `''`",
              op(metadata={"team": ""})),
        parse("metadata_value_int", "operator: metadata value `7` (not a string)",
              op(metadata={"team": 7})),
        parse("sensor_ratio_str", "sensor: `max_failed_ratio='0.1'`",
              sensor(max_failed_ratio="0.1")),
        parse("sensor_poke_negative", "sensor: `poke_interval=-1`", sensor(poke_interval=-1)),
        parse("sensor_errors_bool", "sensor: `max_consecutive_errors=True`",
              sensor(max_consecutive_errors=True)),
        parse("cancel_poll_nan", "cancel operator: `poll_interval=nan`",
              cancel(poll_interval=math.nan)),
        parse("cancel_wait_negative", "cancel operator: `wait_timeout=-1`",
              cancel(wait_timeout=-1)),
        parse("results_two_inputs", "results operator: both `requests` and `input_path`",
              lambda: MistralBatchResultsOperator(
                  task_id="t", job_id=UNKNOWN_UUID, results_path="/tmp/r.jsonl",  # noqa: S108
                  requests=chat(), input_path="/data/in.jsonl")),
    ]  # fmt: skip


_NONE = object()  # "leave this argument out"


def task_cases(fx: dict[str, Any]) -> list[Case]:
    """Inputs only a running task can judge (templates rendered, files read, ids looked up)."""
    from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
    from airflow_provider_mistral_batch.operators.cancel import MistralBatchCancelJobOperator
    from airflow_provider_mistral_batch.operators.results import MistralBatchResultsOperator
    from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor

    def op(**kwargs: Any) -> Callable[[], Any]:
        kwargs.setdefault("endpoint", CHAT)
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("poll_interval", 0.2)
        if not {"requests", "input_path", "input_files"} & kwargs.keys():
            kwargs["requests"] = chat()
        kwargs = {key: value for key, value in kwargs.items() if value is not _NONE}
        return lambda: MistralBatchOperator(**_task_defaults(), **kwargs)

    def task(key: str, label: str, build: Callable[[], Any], native: bool = False) -> Case:
        return Case(key, label, "task", build, native)

    files = fx["files"]
    results = fx["results"]
    return [
        task("endpoint_unknown", "operator: `endpoint='/v1/chat'`", op(endpoint="/v1/chat")),
        task("no_input", "operator: no input (none of requests, input_path, input_files; a "
             "TaskFlow task sets it at run time)", op(requests=_NONE)),
        task("metadata_rendered_reserved", "operator: metadata key `airflow_task_key` from a "
             "template", op(metadata="{{ {'airflow_task_key': 'mine'} }}"), native=True),
        task("requests_empty", "operator: `requests=[]`", op(requests=[])),
        task("requests_json_text", "operator: `requests` as JSON text (an XCom rendered without "
             "`render_template_as_native_obj`)", op(requests=json.dumps(chat()))),
        task("requests_rendered_none", "operator: `requests='{{ ti.xcom_pull(task_ids=\"nope\") "
             "}}'` (no such XCom, native rendering)",
             op(requests="{{ ti.xcom_pull(task_ids='nope') }}"), native=True),
        task("request_no_body", "operator: a request without `body`",
             op(requests=[*chat(1), {"custom_id": "x"}])),
        task("request_body_str", "operator: `body` is a string",
             op(requests=[{"custom_id": "a", "body": "hello"}])),
        task("request_no_custom_id", "operator: a request without `custom_id`",
             op(requests=[{"body": {"messages": []}}])),
        task("request_repeated_id", "operator: `custom_id` repeated",
             op(requests=[*chat(2), {**chat(1)[0]}])),
        task("request_int_id", "operator: `custom_id=5` (not a string)",
             op(requests=[{"custom_id": 5, "body": {"messages": []}}])),
        task("request_not_object", "operator: a request that is a list",
             op(requests=[["custom_id", "a"]])),
        task("request_many_problems", "operator: 25 requests without `body`",
             op(requests=[{"custom_id": f"r{i}"} for i in range(25)])),
        task("jsonl_bad_json", "operator: JSONL with a line that is not JSON",
             op(input_path=files["bad_json"])),
        task("jsonl_blank_line", "operator: JSONL with a blank line",
             op(input_path=files["blank_line"])),
        task("jsonl_not_utf8", "operator: JSONL line that is not UTF-8",
             op(input_path=files["not_utf8"])),
        task("jsonl_empty", "operator: empty JSONL file", op(input_path=files["empty"])),
        task("jsonl_array_line", "operator: JSONL line that is a JSON array",
             op(input_path=files["array_line"])),
        task("input_path_missing", "operator: `input_path` that does not exist",
             op(input_path=files["missing"])),
        task("input_path_dir", "operator: `input_path` that is a folder",
             op(input_path=files["folder"])),
        task("input_path_url", "operator: `input_path='s3://bucket/in.jsonl'` (a URL string)",
             op(input_path="s3://bucket/in.jsonl")),
        task("input_files_str", "operator: `input_files` a single id string",
             op(input_files=UNKNOWN_UUID)),
        task("input_files_empty", "operator: `input_files=[]`", op(input_files=[])),
        task("input_files_int", "operator: `input_files=[123]`", op(input_files=[123])),
        task("input_files_unknown", "operator: `input_files` with an unknown file id",
             op(input_files=[UNKNOWN_UUID])),
        task("input_files_not_uuid", "operator: `input_files=['file-123']` (not a UUID)",
             op(input_files=["file-123"])),
        task("input_files_finetune", "operator: `input_files` uploaded with purpose fine-tune",
             op(input_files=[fx["finetune_file"]])),
        task("input_files_deleted", "operator: `input_files` with a deleted file",
             op(input_files=[fx["deleted_file"]])),
        task("results_path_unwritable", "operator: `results_path` under a regular file",
             op(results_path=results["under_a_file"])),
        task("results_path_missing_dir", "operator: `results_path` in a folder that does not "
             "exist", op(results_path=results["missing_dir"])),
        task("results_path_no_fs", "operator: `results_path='s3://bucket/out.jsonl'` (no s3fs)",
             op(results_path="s3://bucket/out.jsonl")),
        task("file_too_big", f"operator: JSONL larger than the API takes (emulator limit "
             f"{EMULATOR_MAX_FILE_BYTES // 1000} kB)", op(input_path=files["too_big"])),
        task("model_unknown", "operator: `model='no-such-model'`",
             op(model="no-such-model", results_path=results["model_unknown"])),
        task("chat_without_messages", "operator: chat body without `messages`",
             op(requests=[{"custom_id": "a", "body": {"max_tokens": 8}}],
                results_path=results["chat_without_messages"])),
        task("no_model_anywhere", "operator: `model=None` and no model in the bodies",
             op(model=None, results_path=results["no_model_anywhere"])),
        task("ratio_exceeded", "operator: chat body without `messages`, "
             "`max_failed_ratio=0`", op(requests=[{"custom_id": "a", "body": {}}],
                                        max_failed_ratio=0.0)),
        task("conn_wrong_key", "operator: connection with a wrong API key",
             op(mistral_conn_id="mistral_wrong_key")),
        task("conn_no_key", "operator: connection with no API key (password)",
             op(mistral_conn_id="mistral_no_key")),
        task("conn_bad_timeout", "operator: connection extra `timeout='abc'`",
             op(mistral_conn_id="mistral_bad_timeout")),
        task("conn_unreachable", "operator: connection host where nothing listens",
             op(mistral_conn_id="mistral_unreachable")),
        task("conn_missing", "operator: `mistral_conn_id='nope'` (no such connection)",
             op(mistral_conn_id="nope")),
        task("sensor_not_uuid", "sensor: `job_id='job-123'` (not a UUID)",
             lambda: MistralBatchJobSensor(**_task_defaults(), job_id="job-123",
                                           poke_interval=0.2)),
        task("sensor_unknown", "sensor: unknown job id",
             lambda: MistralBatchJobSensor(**_task_defaults(), job_id=UNKNOWN_UUID,
                                           poke_interval=0.2)),
        task("sensor_empty", "sensor: `job_id=''` (e.g. an empty XCom)",
             lambda: MistralBatchJobSensor(**_task_defaults(), job_id="", poke_interval=0.2)),
        task("sensor_deferred_unknown", "sensor, deferrable: unknown job id",
             lambda: MistralBatchJobSensor(**_task_defaults(), job_id=UNKNOWN_UUID,
                                           poke_interval=0.2, deferrable=True)),
        task("cancel_not_uuid", "cancel operator: `job_id='job-123'`",
             lambda: MistralBatchCancelJobOperator(**_task_defaults(), job_id="job-123")),
        task("cancel_unknown", "cancel operator: unknown job id",
             lambda: MistralBatchCancelJobOperator(**_task_defaults(), job_id=UNKNOWN_UUID)),
        task("cancel_ended", "cancel operator: a job that already ended",
             lambda: MistralBatchCancelJobOperator(**_task_defaults(), job_id=fx["ended_job"])),
        task("results_op_running", "results operator: a job still running",
             lambda: MistralBatchResultsOperator(**_task_defaults(), job_id=fx["running_job"],
                                                 results_path=results["results_op"])),
        task("results_op_no_ids", "results operator: `job_id=[]`",
             lambda: MistralBatchResultsOperator(**_task_defaults(), job_id=[],
                                                 results_path=results["results_op"])),
    ]  # fmt: skip


def hook_cases(fx: dict[str, Any]) -> list[Case]:
    """Bad arguments to the hook's methods, called directly."""
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

    def hook(method: str, *args: Any, conn_id: str = "mistral_default", **kwargs: Any) -> Any:
        def call() -> Any:
            with MistralBatchHook(conn_id) as h:
                return getattr(h, method)(*args, **kwargs)

        return call

    def case(key: str, label: str, build: Callable[[], Any]) -> Case:
        return Case(key, label, "hook", build)

    create = {"endpoint": CHAT, "model": MODEL}
    return [
        case("hook_timeout_hours", "hook: `create_batch_job(timeout_hours=0)`",
             hook("create_batch_job", requests=chat(), timeout_hours=0, **create)),
        case("hook_both_inputs", "hook: `create_batch_job` with `input_files` and `requests`",
             hook("create_batch_job", requests=chat(), input_files=[UNKNOWN_UUID], **create)),
        case("hook_metadata_int", "hook: `create_batch_job(metadata={'team': 7})`",
             hook("create_batch_job", requests=chat(), metadata={"team": 7}, **create)),
        case("hook_endpoint_unknown", "hook: `create_batch_job(endpoint='/v1/chat')`",
             hook("create_batch_job", requests=chat(), endpoint="/v1/chat", model=MODEL)),
        case("hook_too_many_inline", "hook: `create_batch_job` with 10,001 inline requests",
             hook("create_batch_job", requests=chat(10_001), **create)),
        case("hook_unknown_input_file", "hook: `create_batch_job(input_files=[unknown id])`",
             hook("create_batch_job", input_files=[UNKNOWN_UUID], **create)),
        case("hook_get_not_uuid", "hook: `get_batch_job('job-123')`",
             hook("get_batch_job", "job-123")),
        case("hook_get_empty", "hook: `get_batch_job('')`", hook("get_batch_job", "")),
        case("hook_upload_missing", "hook: `upload_file` of a path that does not exist",
             hook("upload_file", fx["files"]["missing"])),
        case("hook_upload_too_big", "hook: `upload_file` larger than the API takes",
             hook("upload_file", fx["files"]["too_big"])),
        case("hook_download_unwritable", "hook: `download_file` to a path under a regular file",
             hook("download_file", fx["good_file"], fx["results"]["under_a_file"])),
        case("hook_conn_max_retries", "hook: connection extra `max_retries=-1`",
             hook("get_batch_job", UNKNOWN_UUID, conn_id="mistral_bad_retries")),
    ]  # fmt: skip


# ---------------------------------------------------------------------------- fixtures


def load_fixtures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(os.environ[FIXTURES_ENV]).read_text())
    return data


def make_fixtures(workdir: Path) -> dict[str, Any]:
    """Input files, uploaded files and jobs the cases refer to."""
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

    data = workdir / "data"
    data.mkdir()
    good = "".join(json.dumps(request) + "\n" for request in chat(3))
    files = {
        "bad_json": ("prompts.jsonl", good.encode() + b"{not json\n"),
        "blank_line": (
            "blank.jsonl",
            (json.dumps(chat(1, "x")[0]) + "\n\n").encode() + good.encode(),
        ),
        "not_utf8": ("latin1.jsonl", good.encode() + b'{"custom_id": "\xe9"}\n'),
        "empty": ("empty.jsonl", b""),
        "array_line": ("array.jsonl", b'["custom_id", "a"]\n'),
        "good": ("good.jsonl", good.encode()),
    }
    paths: dict[str, str] = {}
    for key, (name, content) in files.items():
        path = data / name
        path.write_bytes(content)
        paths[key] = str(path)
    big = data / "big.jsonl"
    with big.open("w") as handle:
        for index in range(2 * EMULATOR_MAX_FILE_BYTES // 100):
            line = {
                "custom_id": f"r{index}",
                "body": {"messages": [{"role": "user", "content": "x" * 40}]},
            }
            handle.write(json.dumps(line) + "\n")
    paths["too_big"] = str(big)
    paths["missing"] = str(data / "nope.jsonl")
    (data / "folder.jsonl").mkdir()
    paths["folder"] = str(data / "folder.jsonl")
    a_file = data / "a-file"
    a_file.write_text("x")
    results = {
        "under_a_file": str(a_file / "results.jsonl"),
        "missing_dir": str(data / "no-such-folder" / "results.jsonl"),
    }
    for key in ("model_unknown", "chat_without_messages", "no_model_anywhere", "results_op"):
        results[key] = str(data / f"results-{key}.jsonl")
    with MistralBatchHook() as hook:
        finetune = hook.upload_file(Path(paths["good"]), filename="tune.jsonl", purpose="fine-tune")
        deleted = hook.upload_file(Path(paths["good"]), filename="gone.jsonl")
        hook.delete_file(deleted.id)
        good_file = hook.upload_file(Path(paths["good"]))
        ended = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=chat(2))
        for _ in range(100):
            if hook.get_batch_job(ended.id).status.is_terminal:
                break
            time.sleep(0.1)
        # 10,000 requests at 20 a second: still running when the bench ends.
        running = hook.create_batch_job(
            endpoint=CHAT, model=MODEL, requests=chat(10_000, prefix="long")
        )
    return {
        "files": paths,
        "results": results,
        "finetune_file": finetune.id,
        "deleted_file": deleted.id,
        "good_file": good_file.id,
        "ended_job": ended.id,
        "running_job": running.id,
    }


# ---------------------------------------------------------------------------- running them


@dataclass
class Row:
    label: str
    where: str
    retried: str
    message: str
    requests: list[str] = field(default_factory=list)


def api_calls(recorded: list[Any]) -> list[str]:
    """``GET /v1/files/<id> 404``-style lines of what the emulator saw."""
    calls = []
    for request in recorded:
        path = _UUID.sub("<id>", request.path)
        calls.append(f"{request.method} {path} {request.status_code}")
    return calls


def where_refused(kind: str, calls: list[str], ok: bool) -> str:
    """The stage at which a case stopped, from what the API saw."""
    creates = [c for c in calls if c.startswith("POST /v1/batch/jobs ")]
    uploads = [c for c in calls if c.startswith("POST /v1/files ")]
    refused = [c for c in calls if not c.endswith((" 200", " 201"))]
    if ok:
        return "not refused: the job ran"
    if not calls:
        return "task start, nothing sent" if kind == "task" else "hook, nothing sent"
    if refused:
        first = refused[0]
        status = first.rsplit(" ", 1)[1]
        call = first.rsplit(" ", 1)[0]
        stage = "API" if creates or uploads else "API look-up"
        return f"{stage}: {call} -> {status}"
    if creates:
        return "after the job ended (failure policy)"
    return "task start, after a look-up (nothing created)"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PORT = re.compile(r"127\.0\.0\.1:\d+")
_REQUEST_ID = re.compile(r"\(request id [^)]+\)")


def redact(message: str, workdir: Path, fx: dict[str, Any] | None) -> str:
    text = message.replace(str(workdir), "<tmp>")
    if fx is not None:
        names = {
            fx["finetune_file"]: "<fine-tune file id>",
            fx["deleted_file"]: "<deleted file id>",
            fx["good_file"]: "<file id>",
            fx["ended_job"]: "<ended job id>",
            fx["running_job"]: "<running job id>",
            UNKNOWN_UUID: "<unknown uuid>",
        }
        for value, name in names.items():
            text = text.replace(value, name)
    text = _UUID.sub("<uuid>", text)
    text = _REQUEST_ID.sub("(request id <id>)", text)
    return _PORT.sub("127.0.0.1:<port>", text)


def run_parse_case(case: Case) -> Row:
    from airflow.sdk import DAG

    try:
        with DAG(dag_id=f"parse_{case.key}", schedule=None, start_date=datetime(2026, 1, 1)):
            case.build()
    except Exception as exc:
        return Row(case.label, "DAG parse", "no (import error)", f"{type(exc).__name__}: {exc}")
    return Row(case.label, "not refused", "-", "(accepted)")


def run_task_case(case: Case, dags: dict[str, Any], emulator: Any, callbacks: Path) -> Row:
    from mistral_batch_emulator.dagtest import task_states

    dag = dags[f"bad_input_{case.key}"]
    before = len(emulator.requests)
    dag_run = dag.test()
    calls = api_calls(emulator.requests[before:])
    state, tries = task_states(dag_run)[("t", -1)]
    records = [
        json.loads(line)
        for line in (callbacks.read_text().splitlines() if callbacks.exists() else [])
        if json.loads(line)["dag_id"] == dag.dag_id
    ]
    ok = state == "success"
    if ok:
        message = result_error(dag.get_task("t")) or "(succeeded)"
        retried = "-"
    else:
        last = records[-1] if records else {"type": "?", "message": f"task {state}"}
        message = f"{last['type']}: {last['message']}"
        retried = f"yes ({tries} tries)" if tries > 1 else "no"
    return Row(case.label, where_refused("task", calls, ok), retried, message, calls)


def result_error(task: Any) -> str | None:
    """The first error in the results file of a task that succeeded, if it wrote one."""
    path = getattr(task, "results_path", None)
    if not path or not Path(str(path)).exists():
        return None
    for line in Path(str(path)).read_text().splitlines():
        item = json.loads(line)
        if item.get("error"):
            return f"task succeeded with a warning; results file: {item['error']}"
    return "task succeeded; no error in the results file"


def run_hook_case(case: Case, emulator: Any) -> Row:
    before = len(emulator.requests)
    try:
        case.build()
    except Exception as exc:
        calls = api_calls(emulator.requests[before:])
        sent = len(calls)
        retried = f"yes ({sent} attempts)" if sent > 1 else "no"
        where = where_refused("hook", calls, ok=False)
        return Row(case.label, where, retried, f"{type(exc).__name__}: {exc}", calls)
    calls = api_calls(emulator.requests[before:])
    return Row(case.label, "not refused by the hook", "-", "(returned)", calls)


def cell(text: str) -> str:
    """Text for a markdown table cell: ``<tmp>`` and the like must not read as HTML tags."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "\\|").replace("\n", "<br>")


def print_table(rows: list[Row]) -> None:
    print("| # | input | where refused | retried | message the user sees |")
    print("|---|---|---|---|---|")
    for number, row in enumerate(rows, start=1):
        print(
            f"| {number} | {cell(row.label)} | {cell(row.where)} | {cell(row.retried)} | "
            f"{cell(row.message)} |"
        )


def run(args: argparse.Namespace, workdir: Path) -> int:
    from mistral_batch_emulator.dagtest import (
        migrate_db,
        set_mistral_connection,
        use_private_airflow_home,
    )

    dags_folder = workdir / "dags"
    dags_folder.mkdir()
    use_private_airflow_home(dags_folder, workdir / "airflow")
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING" if args.verbose else "CRITICAL"
    callbacks = workdir / "callbacks.jsonl"
    os.environ[CALLBACK_LOG_ENV] = str(callbacks)
    os.environ[BENCH_DIR_ENV] = str(Path(__file__).resolve().parent)
    migrate_db()

    from mistral_batch_emulator import EmulatorConfig, run_emulator

    config = EmulatorConfig(
        requests_per_second=20.0,
        max_file_bytes=EMULATOR_MAX_FILE_BYTES,
        data_dir=workdir / "emulator",
    )
    started = time.monotonic()
    with run_emulator(config) as emulator:
        fast = {"timeout": 5, "connect_timeout": 1, "max_retries": 2}
        set_mistral_connection(emulator.base_url, emulator.api_key, extra=fast)
        for conn_id, key, extra, host in (
            ("mistral_wrong_key", "not-the-key", fast, emulator.base_url),
            ("mistral_no_key", "", fast, emulator.base_url),
            ("mistral_bad_timeout", emulator.api_key, {"timeout": "abc"}, emulator.base_url),
            ("mistral_bad_retries", emulator.api_key, {"max_retries": -1}, emulator.base_url),
            ("mistral_unreachable", emulator.api_key, fast, f"http://127.0.0.1:{free_port()}"),
        ):
            set_mistral_connection(host, key, conn_id=conn_id, extra=extra)
        fx = make_fixtures(workdir)
        fixtures = workdir / "fixtures.json"
        fixtures.write_text(json.dumps(fx))
        os.environ[FIXTURES_ENV] = str(fixtures)
        (dags_folder / "bad_inputs_dags.py").write_text(DAG_SOURCE)

        wanted = [
            case
            for case in [*parse_cases(), *task_cases(fx), *hook_cases(fx)]
            if args.only is None or args.only in case.key
        ]
        print(f"{len(wanted)} cases; emulator {emulator.base_url}", file=sys.stderr, flush=True)
        rows: list[Row] = []
        dags: dict[str, Any] = {}
        if any(case.kind == "task" for case in wanted):
            bag_started = time.monotonic()
            dags = load_dags(dags_folder)
            print(f"parsed {len(dags)} DAGs in {time.monotonic() - bag_started:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        for case in wanted:
            case_started = time.monotonic()
            if case.kind == "parse":
                row = run_parse_case(case)
            elif case.kind == "task":
                row = run_task_case(case, dags, emulator, callbacks)
            else:
                row = run_hook_case(case, emulator)
            row.message = redact(row.message, workdir, fx)
            row.where = redact(row.where, workdir, fx)
            rows.append(row)
            print(
                f"  {case.key}: {row.where} ({time.monotonic() - case_started:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
            if args.verbose and row.requests:
                print("    " + "; ".join(row.requests), file=sys.stderr)
    print()
    print_table(rows)
    print(f"\n{len(rows)} cases in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def load_dags(folder: Path) -> dict[str, Any]:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,unused-ignore]

    bag = DagBag(dag_folder=str(folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return dict(bag.dags)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the cases whose key contains this")
    parser.add_argument("--verbose", action="store_true", help="Airflow warnings, API calls")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-bad-inputs-"))
    try:
        return run(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
