"""broken_output_custom_ids and flaky_custom_ids, over real loopback HTTP, the CLI and files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from airflow_provider_mistral_batch.batch.output_spec import answer_text, output_spec
from airflow_provider_mistral_batch.models import BatchResultLine
from emulator.tests.support import Api, chat_line, jsonl, parse_jsonl
from mistral_batch_emulator import EmulatorConfig, RunningEmulator
from mistral_batch_emulator.cli import _parser, config_from_args, main
from mistral_batch_emulator.config_file import ConfigError


class Invoice(BaseModel):
    number: str
    total: float = Field(ge=0)
    paid: bool


class Loose(BaseModel):
    """Nothing required: a wrong shape must still fail it."""

    note: str | None = None


def _line(custom_id: str, output_type: Any = Invoice) -> dict[str, Any]:
    """A chat line asking for JSON of ``output_type``; ``str``: no response_format."""
    line = chat_line(custom_id)
    response_format = output_spec(output_type).response_format()
    if response_format is not None:
        line["body"]["response_format"] = response_format
    return line


def _job(api: Api, lines: list[Any]) -> dict[str, Any]:
    file_id = api.upload(jsonl(lines))["id"]
    done = api.wait(api.create_job(input_files=[file_id])["id"])
    assert done["status"] == "SUCCESS", done
    return done


def _by_id(api: Api, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    return {line["custom_id"]: line for line in parse_jsonl(api.content(file_id))}


def _text(line: dict[str, Any]) -> str:
    text = answer_text(json.dumps(line["response"]["body"]).encode())
    assert text is not None
    return text


def test_broken_outputs_succeed_with_text_the_output_type_refuses(
    emulator: RunningEmulator, api: Api
) -> None:
    emulator.update_config(
        broken_output_custom_ids={
            "not-json": "not_json",
            "wrong": "wrong_shape",
            "wrong-loose": "wrong_shape",
            "wrong-object": "wrong_shape",
        }
    )
    lines = [
        _line("ok"),
        _line("not-json"),
        _line("wrong"),
        _line("wrong-loose", Loose),
        _line("wrong-object", str),
    ]
    lines[-1]["body"]["response_format"] = {"type": "json_object"}
    done = _job(api, lines)
    assert (done["succeeded_requests"], done["failed_requests"]) == (5, 0)
    assert done["error_file"] is None
    outputs = _by_id(api, done["output_file"])
    assert all(line["response"]["status_code"] == 200 for line in outputs.values())

    spec = output_spec(Invoice)
    assert spec.check(_text(outputs["ok"]))[1] is None
    not_json = _text(outputs["not-json"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(not_json)
    _, problem = spec.check(not_json)
    assert problem is not None

    wrong = json.loads(_text(outputs["wrong"]))
    assert isinstance(wrong, dict)
    assert not {"number", "total", "paid"} & set(wrong), "the required fields are missing"
    _, problem = spec.check(_text(outputs["wrong"]))
    assert problem is not None
    assert "number" in problem

    assert output_spec(Loose).check(_text(outputs["wrong-loose"]))[1] is not None
    assert not isinstance(json.loads(_text(outputs["wrong-object"])), dict)


def test_broken_not_json_on_a_text_request(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(broken_output_custom_ids={"t": "not_json"})
    done = _job(api, [chat_line("t")])
    text = _text(_by_id(api, done["output_file"])["t"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_flaky_requests_fail_n_times_across_jobs_then_succeed(
    emulator: RunningEmulator, api: Api
) -> None:
    emulator.update_config(flaky_custom_ids={"f": 2})
    lines = [_line("f"), _line("steady")]
    for attempt in (1, 2):
        done = _job(api, lines)
        assert (done["succeeded_requests"], done["failed_requests"]) == (1, 1)
        assert set(_by_id(api, done["output_file"])) == {"steady"}
        line = _by_id(api, done["error_file"])["f"]
        assert line["response"]["status_code"] == 503
        body = line["response"]["body"]
        assert (body["type"], body["object"]) == ("service_unavailable", "error")
        assert line["error"]["code"] == "service_unavailable"
        assert f"failure {attempt} of 2" in line["error"]["message"]
        parsed = BatchResultLine.model_validate(line)
        assert parsed.response is not None
        assert parsed.response.status_code == 503
        assert not parsed.succeeded
        assert parsed.error_message == line["error"]["message"]
    third = _job(api, lines)
    assert (third["succeeded_requests"], third["failed_requests"]) == (2, 0)
    assert output_spec(Invoice).check(_text(_by_id(api, third["output_file"])["f"]))[1] is None


def test_setting_flaky_custom_ids_restarts_the_counts(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(flaky_custom_ids={"f": 1})
    assert _job(api, [chat_line("f")])["failed_requests"] == 1
    assert _job(api, [chat_line("f")])["failed_requests"] == 0
    emulator.update_config(latency_seconds=0.0)  # another field: the counts stay
    assert _job(api, [chat_line("f")])["failed_requests"] == 0
    emulator.update_config(flaky_custom_ids={"f": 1})
    assert _job(api, [chat_line("f")])["failed_requests"] == 1


def test_failing_custom_ids_win_over_flaky(emulator: RunningEmulator, api: Api) -> None:
    emulator.update_config(failing_custom_ids={"f"}, flaky_custom_ids={"f": 1})
    for _ in range(2):
        line = _by_id(api, _job(api, [chat_line("f")])["error_file"])["f"]
        assert line["response"]["status_code"] == 500


def test_knobs_validate() -> None:
    with pytest.raises(ValueError, match="not_json"):
        EmulatorConfig(broken_output_custom_ids={"a": "garbled"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        EmulatorConfig(flaky_custom_ids={"a": -1})


def test_cli_flags_and_config_file_set_the_knobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "emulator.json"
    settings = {"broken_output_custom_ids": {"b": "wrong_shape"}, "flaky_custom_ids": {"f": 3}}
    config_file.write_text(json.dumps(settings), encoding="utf-8")
    from_file = config_from_args(_parser().parse_args(["--config", str(config_file)]))
    assert from_file.broken_output_custom_ids == {"b": "wrong_shape"}
    assert from_file.flaky_custom_ids == {"f": 3}

    flags = [
        "--config",
        str(config_file),
        "--broken-output-custom-id",
        "x=not_json",
        "--broken-output-custom-id",
        "y=wrong_shape",
        "--flaky-custom-id",
        "id=with=equals=2",
    ]
    overridden = config_from_args(_parser().parse_args(flags))
    assert overridden.broken_output_custom_ids == {"x": "not_json", "y": "wrong_shape"}
    assert overridden.flaky_custom_ids == {"id=with=equals": 2}, "flags replace the file's"

    main([*flags, "--print-config"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["flaky_custom_ids"] == {"id=with=equals": 2}
    assert printed["broken_output_custom_ids"] == {"x": "not_json", "y": "wrong_shape"}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--flaky-custom-id", "f=often"], "--flaky-custom-id: f: Input should be a valid integer"),
        (["--flaky-custom-id", "f"], "--flaky-custom-id: expected ID=N, got 'f'"),
        (["--broken-output-custom-id", "b=bad"], "--broken-output-custom-id: b: Input should be"),
    ],
)
def test_cli_rejects_bad_knob_flags(
    flags: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*flags, "--print-config"])
    assert exited.value.code == 2
    assert expected in capsys.readouterr().err


def test_config_file_rejects_a_bad_kind(tmp_path: Path) -> None:
    config_file = tmp_path / "bad.json"
    config_file.write_text(json.dumps({"broken_output_custom_ids": {"a": "nope"}}))
    with pytest.raises(ConfigError, match=r"field broken_output_custom_ids\.a: Input should be"):
        config_from_args(_parser().parse_args(["--config", str(config_file)]))
