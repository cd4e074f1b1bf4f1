"""The "Mistral batch job" extra link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from airflow_provider_mistral_batch.links import MistralBatchJobLink, job_console_url
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor
from mistral_batch_emulator import RunningEmulator
from tests.helpers import set_connection
from tests.integration.operators.support import CHAT, MODEL, FakeTaskInstance, chat_requests

JOB_ID = "6f1c2a54-3b0e-4c55-9d9a-1f2e3d4c5b6a"


def test_persist_pushes_the_default_console_url_under_the_links_key() -> None:
    ti = FakeTaskInstance()
    url = MistralBatchJobLink.persist({"ti": ti}, JOB_ID)
    assert url == f"https://console.mistral.ai/build/batches/{JOB_ID}"
    assert MistralBatchJobLink().xcom_key == "_link_MistralBatchJobLink"
    assert ti.pushes == [("_link_MistralBatchJobLink", url)]


@pytest.mark.parametrize(
    "console", ["https://console.example.test", "https://console.example.test/"]
)
def test_persist_uses_the_given_console_url(console: str) -> None:
    ti = FakeTaskInstance()
    url = MistralBatchJobLink.persist({"ti": ti}, JOB_ID, console)
    assert url == f"https://console.example.test/build/batches/{JOB_ID}"
    assert ti.pushed[MistralBatchJobLink().xcom_key] == url
    assert job_console_url(JOB_ID, console) == url


def test_link_name() -> None:
    assert MistralBatchJobLink.name == "Mistral batch job"


def test_get_link_reads_the_pushed_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    asked: list[tuple[Any, str]] = []

    def get_value(*, ti_key: Any, key: str) -> Any:
        asked.append((ti_key, key))
        return stored

    monkeypatch.setattr(BaseXCom, "get_value", get_value)
    op = MistralBatchOperator(task_id="batch", endpoint=CHAT, input_files=["f"])
    link = MistralBatchJobLink()
    stored: Any = f"https://console.mistral.ai/build/batches/{JOB_ID}"
    assert link.get_link(op, ti_key="key-1") == stored  # type: ignore[arg-type]
    assert asked == [("key-1", "_link_MistralBatchJobLink")]
    stored = None
    assert link.get_link(op, ti_key="key-2") == ""  # type: ignore[arg-type]


@pytest.mark.integration
def test_the_operator_uses_the_connections_console_url(
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    closing: Callable[[Any], Any],
) -> None:
    set_connection(
        monkeypatch,
        emulator,
        conn_id="mistral_eu",
        extra={"console_url": "https://console.eu.example.test/", "max_retries": 0},
    )
    op = closing(
        MistralBatchOperator(
            task_id="batch",
            endpoint=CHAT,
            model=MODEL,
            requests=chat_requests(1),
            mistral_conn_id="mistral_eu",
            wait_for_completion=False,
        )
    )
    ti = FakeTaskInstance()
    job_id = op.execute({"ti": ti})["job_id"]
    assert ti.pushed["_link_MistralBatchJobLink"] == (
        f"https://console.eu.example.test/build/batches/{job_id}"
    )
    # The job ids (and their connection, for the UI) are pushed before the link.
    assert ti.keys[:4] == [
        "batch_job_id",
        "batch_job_ids",
        "mistral_conn_id",
        "_link_MistralBatchJobLink",
    ]


@pytest.mark.integration
def test_the_sensor_pushes_the_link_too(
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    closing: Callable[[Any], Any],
) -> None:
    set_connection(
        monkeypatch,
        emulator,
        conn_id="mistral_default",
        extra={"console_url": "https://console.example.test"},
    )
    sensor = closing(MistralBatchJobSensor(task_id="wait", job_id=JOB_ID, deferrable=True))
    ti = FakeTaskInstance()
    with pytest.raises(Exception, match=JOB_ID):  # the job is unknown to the emulator
        sensor.execute({"ti": ti})
    assert ti.pushed == {
        "_link_MistralBatchJobLink": f"https://console.example.test/build/batches/{JOB_ID}",
        "batch_job_id": JOB_ID,
        "mistral_conn_id": "mistral_default",
    }


@pytest.mark.integration
def test_with_the_emulator_as_connection_the_link_opens_its_job_page(
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    closing: Callable[[Any], Any],
) -> None:
    set_connection(monkeypatch, emulator, conn_id="mistral_default", extra={"max_retries": 0})
    op = closing(
        MistralBatchOperator(
            task_id="batch",
            endpoint=CHAT,
            model=MODEL,
            requests=chat_requests(1),
            wait_for_completion=False,
        )
    )
    ti = FakeTaskInstance()
    job_id = op.execute({"ti": ti})["job_id"]
    link = ti.pushed["_link_MistralBatchJobLink"]
    assert link == f"{emulator.base_url}/build/batches/{job_id}"
    # Offline, as a browser opens it: no key.
    page = httpx2.get(link, timeout=10)
    assert page.status_code == 200
    assert job_id in page.text
