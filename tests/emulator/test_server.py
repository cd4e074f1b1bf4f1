"""Starting and stopping the emulator: run_emulator, reset, create_app and the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from airflow_provider_mistral_batch.emulator import (
    EmulatorConfig,
    Fault,
    RunningEmulator,
    create_app,
    run_emulator,
)
from airflow_provider_mistral_batch.emulator.cli import _parser, config_from_args
from tests.emulator.support import Api, chat_line, jsonl


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_cli_serves_until_stopped() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "airflow_provider_mistral_batch.emulator.cli"]
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
