"""Model names: the emulator knows Mistral's public models and refuses others, like the API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import ValidationError

from emulator.tests.support import CHAT, Api, chat_line, jsonl, parse_jsonl
from mistral_batch_emulator import EmulatorConfig, RunningEmulator
from mistral_batch_emulator.catalog import DEFAULT_MODELS
from mistral_batch_emulator.cli import _parser, config_from_args, main

TYPO = "mistral-larg-latest"
TYPO_MESSAGE = f"Invalid model: {TYPO} (unknown model; did you mean mistral-large-latest?)"


def _post_job(http: httpx2.Client, **body: Any) -> httpx2.Response:
    body.setdefault("endpoint", CHAT)
    return http.post("/v1/batch/jobs", json=body)


def _results(api: Api, job_id: str) -> dict[str, dict[str, Any]]:
    done = api.wait(job_id)
    assert done["status"] == "SUCCESS", done
    outputs = api.job(job_id, inline="true")["outputs"]
    return {line["custom_id"]: line for line in outputs}


def test_a_job_naming_an_unknown_model_is_refused_at_creation(http: httpx2.Client) -> None:
    response = _post_job(http, model=TYPO, requests=[chat_line("a")])
    assert response.status_code == 400
    # The real API's answer to a model it lacks (type invalid_model, code 1500), with a hint.
    assert response.json() == {
        "object": "error",
        "message": TYPO_MESSAGE,
        "type": "invalid_model",
        "param": None,
        "code": "1500",
    }
    assert http.get("/v1/batch/jobs").json()["total"] == 0, "no job was created"


def test_a_name_far_from_every_model_gets_no_guess(http: httpx2.Client) -> None:
    response = _post_job(http, model="gpt-4o", requests=[chat_line("a")])
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("Invalid model: gpt-4o (unknown model;")
    assert "did you mean" not in message


@pytest.mark.parametrize("model", ["mistral-large-latest", "mistral-small-2603", "mistral-embed"])
def test_known_models_are_accepted(api: Api, model: str) -> None:
    job = api.create_job(model=model, requests=[chat_line("a")])
    assert api.wait(job["id"])["status"] == "SUCCESS"


def test_a_request_body_naming_an_unknown_model_fails_alone(api: Api) -> None:
    typo_body = {**chat_line("typo")["body"], "model": TYPO}
    job = api.create_job(
        model=None,
        requests=[
            {"custom_id": "typo", "body": typo_body},
            {"custom_id": "ok", "body": {**chat_line("ok")["body"], "model": "codestral-latest"}},
        ],
    )
    results = _results(api, job["id"])
    assert results["ok"]["response"]["body"]["model"] == "codestral-latest"
    failed = results["typo"]
    assert failed["response"]["status_code"] == 400
    assert failed["response"]["body"]["type"] == "invalid_model"
    assert failed["response"]["body"]["code"] == "1500"
    assert failed["error"] == {"message": f"requests[0]: {TYPO_MESSAGE}", "code": "invalid_model"}


def test_a_body_model_is_checked_even_when_the_job_names_a_known_one(api: Api) -> None:
    line = {"custom_id": "a", "body": {**chat_line("a")["body"], "model": TYPO}}
    file_id = api.upload(jsonl([line]))["id"]
    done = api.wait(api.create_job(model="mistral-small-latest", input_files=[file_id])["id"])
    assert done["status"] == "SUCCESS"
    (failed,) = parse_jsonl(api.content(done["error_file"]))
    assert failed["error"]["message"] == f"line 1 of file {file_id}: {TYPO_MESSAGE}"


def test_star_accepts_any_model(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(models=["*"])
    job = api.create_job(
        model="my-fine-tune",
        requests=[{"custom_id": "b", "body": {**chat_line("b")["body"], "model": "other"}}],
    )
    assert _results(api, job["id"])["b"]["response"]["body"]["model"] == "other"


def test_a_custom_list_replaces_the_default(emulator: RunningEmulator, http: httpx2.Client) -> None:
    emulator.update_config(models=["ft:my-model"])
    assert _post_job(http, model="ft:my-model", requests=[chat_line("a")]).status_code == 200
    refused = _post_job(http, model="mistral-small-latest", requests=[chat_line("a")])
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Invalid model: mistral-small-latest")


def test_the_default_holds_latest_aliases_and_dated_versions() -> None:
    defaults = EmulatorConfig().models
    assert defaults == list(DEFAULT_MODELS)
    assert len(set(defaults)) == len(defaults), "no name twice"
    for name in (
        "mistral-large-latest",
        "mistral-medium-latest",
        "mistral-small-latest",
        "ministral-8b-latest",
        "ministral-3b-latest",
        "codestral-latest",
        "pixtral-large-latest",
        "mistral-embed",
        "codestral-embed",
        "mistral-moderation-latest",
        "mistral-ocr-latest",
        "voxtral-mini-latest",
        "magistral-medium-latest",
        "devstral-latest",
        "mistral-large-2512",
        "mistral-small-2603",
    ):
        assert name in defaults, name


@pytest.mark.parametrize(
    ("models", "expected"),
    [([], 'list at least one model name, or "*" to accept any'), (["a", " "], "cannot be empty")],
)
def test_an_empty_model_list_or_name_is_a_config_error(models: list[str], expected: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(expected)):
        EmulatorConfig(models=models)


def test_cli_model_flags_and_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert config_from_args(_parser().parse_args([])).models == list(DEFAULT_MODELS)
    flags = ["--model", "a", "--model", "b"]
    assert config_from_args(_parser().parse_args(flags)).models == ["a", "b"]
    assert config_from_args(_parser().parse_args(["--any-model"])).models == ["*"]

    config_file = tmp_path / "emulator.json"
    config_file.write_text(json.dumps({"models": ["from-file"]}), encoding="utf-8")
    from_file = ["--config", str(config_file)]
    assert config_from_args(_parser().parse_args(from_file)).models == ["from-file"]
    overridden = config_from_args(_parser().parse_args([*from_file, "--model", "x"]))
    assert overridden.models == ["x"], "the flag replaces the file's list"

    main([*from_file, "--print-config"])
    assert json.loads(capsys.readouterr().out)["models"] == ["from-file"]

    with pytest.raises(SystemExit) as exited:
        main(["--model", "a", "--any-model", "--print-config"])
    assert exited.value.code == 2
    config_file.write_text(json.dumps({"models": []}), encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main([*from_file, "--print-config"])
    assert exited.value.code == 2
    assert "field models: Value error, list at least one model name" in capsys.readouterr().err
