"""Starting and stopping the emulator: run_emulator, reset, create_app and the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from emulator.tests.support import Api, chat_line, jsonl
from mistral_batch_emulator import (
    EmulatorConfig,
    Fault,
    RunningEmulator,
    create_app,
    run_emulator,
)
from mistral_batch_emulator.cli import _parser, config_from_args, main


def test_reset_forgets_everything(emulator: RunningEmulator, api: Api) -> None:
    file_id = api.upload(jsonl([chat_line("a")]))["id"]
    api.wait(api.create_job(input_files=[file_id])["id"])
    emulator.update_config(requests_per_second=1.0, failing_custom_ids={"a"})
    emulator.set_faults([Fault(kind="status", path_prefix="/v1/nothing")])
    emulator.reset()
    assert emulator.requests == []
    assert emulator.pending_faults == []
    assert emulator.config.requests_per_second == 50_000.0
    assert emulator.config.failing_custom_ids == set()
    assert api.http.get("/v1/files").json()["total"] == 0
    assert api.http.get("/v1/batch/jobs").json()["total"] == 0


def test_separate_instance_with_its_own_settings(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key="k2", requests_per_second=10_000.0, data_dir=tmp_path)
    with run_emulator(config) as other:
        assert other.api_key == "k2"
        assert other.base_url.startswith("http://127.0.0.1:")
        with httpx2.Client(
            base_url=other.base_url, headers={"Authorization": "Bearer k2"}
        ) as client:
            api = Api(client)
            file_id = api.upload(b'{"custom_id":"x","body":{"messages":[{"role":"user"}]}}\n')["id"]
            assert api.wait(api.create_job(input_files=[file_id])["id"])["status"] == "SUCCESS"
        assert any(tmp_path.rglob("*.bin"))
    with pytest.raises(httpx2.TransportError):
        httpx2.get(other.base_url + "/v1/files", headers={"Authorization": "Bearer k2"})


def test_create_app_serves_openapi() -> None:
    app = create_app(EmulatorConfig())
    paths = {route.path for route in app.routes if hasattr(route, "path")}
    assert {"/v1/files", "/v1/batch/jobs", "/v1/batch/jobs/{job_id}/cancel"} <= paths


def test_cli_arguments_build_the_config() -> None:
    args = _parser().parse_args(
        [
            "--rps",
            "5",
            "--latency",
            "0.1",
            "--queue-seconds",
            "2",
            "--fault-rate",
            "0.25",
            "--failing-custom-id",
            "a",
            "--failing-custom-id",
            "b",
            "--seconds-per-timeout-hour",
            "1",
            "--api-key",
            "key",
        ]
    )
    config = config_from_args(args)
    assert config.requests_per_second == 5.0
    assert config.latency_seconds == 0.1
    assert config.queue_seconds == 2.0
    assert config.fault_rate == 0.25
    assert config.failing_custom_ids == {"a", "b"}
    assert config.seconds_per_timeout_hour == 1.0
    assert config.api_key == "key"
    assert args.port == 8787
    assert args.host == "127.0.0.1"


def _write_json(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_cli_config_file_sets_every_field_and_flags_override_it(tmp_path: Path) -> None:
    config_file = _write_json(
        tmp_path / "emulator.json",
        {
            "api_key": "file-key",
            "requests_per_second": 10,
            "faults": [{"kind": "status", "status_code": 429, "retry_after": "2"}],
            "fault_pool": [{"kind": "drop_before", "method": "GET"}],
            "fault_rate": 0.1,
            "failing_custom_ids": ["from-file"],
            "partial_output_on_cancel": False,
            "error_line_style": "string",
            "seconds_per_timeout_hour": 0.5,
            "max_file_bytes": 1024,
        },
    )
    args = ["--config", str(config_file)]
    from_file = config_from_args(_parser().parse_args(args))
    assert from_file.api_key == "file-key"
    assert from_file.requests_per_second == 10.0
    assert from_file.faults == [Fault(kind="status", status_code=429, retry_after="2")]
    assert from_file.fault_pool == [Fault(kind="drop_before", method="GET")]
    assert from_file.failing_custom_ids == {"from-file"}
    assert from_file.partial_output_on_cancel is False
    assert from_file.error_line_style == "string"
    assert from_file.seconds_per_timeout_hour == 0.5
    assert from_file.max_file_bytes == 1024
    assert from_file.latency_seconds == 0.0, "a field the file leaves out keeps its default"

    flags = ["--rps", "5", "--failing-custom-id", "x", "--any-key", "--seed", "0"]
    overridden = config_from_args(_parser().parse_args([*args, *flags]))
    assert overridden.requests_per_second == 5.0
    assert overridden.failing_custom_ids == {"x"}, "the flag replaces the file's list"
    assert overridden.api_key is None
    assert overridden.fault_rate == 0.1
    assert overridden.error_line_style == "string"


def test_cli_print_config_prints_json_that_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = _write_json(tmp_path / "in.json", {"failing_custom_ids": ["b", "a"]})
    main(["--config", str(config_file), "--api-key", "k", "--print-config"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["api_key"] == "k"
    assert printed["failing_custom_ids"] == ["a", "b"]
    assert printed["data_dir"] is None
    assert set(printed) == set(EmulatorConfig.model_fields)

    again = _write_json(tmp_path / "printed.json", printed)
    assert config_from_args(_parser().parse_args(["--config", str(again)])) == EmulatorConfig(
        api_key="k", failing_custom_ids={"a", "b"}
    )


@pytest.mark.parametrize(
    ("content", "flags", "expected"),
    [
        ({"fault_rate": 2}, [], "field fault_rate: Input should be less than or equal to 1"),
        ({"faults": [{"kind": "explode"}]}, [], "field faults.0.kind: Input should be"),
        ({"fautl_rate": 0.5}, [], "unknown field 'fautl_rate'"),
        (
            {"faults": [{"kind": "status", "statuscode": 429}]},
            [],
            "field faults.0.statuscode: Extra inputs are not permitted",
        ),
        ([1, 2], [], "expected a JSON object of EmulatorConfig fields, got list"),
        ("{not json", [], "not valid JSON: line 1 column 2"),
        ({}, ["--rps", "0"], "--rps: Input should be greater than 0"),
    ],
)
def test_cli_bad_config_exits_2_naming_the_source_and_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: object,
    flags: list[str],
    expected: str,
) -> None:
    config_file = tmp_path / "bad.json"
    if isinstance(content, str):
        config_file.write_text(content, encoding="utf-8")
    else:
        _write_json(config_file, content)
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config_file), *flags, "--print-config"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    if not flags:
        assert f"--config {config_file}" in err


def test_cli_missing_config_file_and_clashing_key_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(missing)])
    assert exited.value.code == 2
    assert f"--config {missing}: cannot read the file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--api-key", "k", "--any-key", "--print-config"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --any-key: not allowed with argument --api-key" in err
    assert "api_key" not in err  # the config was not printed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_cli_serves_until_stopped() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "mistral_batch_emulator.cli"]
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [*command, "--port", str(port), "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/files"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx2.get(url, headers={"Authorization": "Bearer cli-key"})
                break
            except httpx2.TransportError:
                assert process.poll() is None, "the CLI exited"
                assert time.monotonic() < deadline, "the CLI never served"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["total"] == 0
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}" in output
    assert "cli-key" in output
