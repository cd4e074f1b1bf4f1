"""The connection list's Test button, as Airflow's UI sends it, for a ``mistral`` connection
stored in the metadata DB (the UI lists only those): through Airflow's own api-server app and
the plugin's middleware, against the emulator."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_mistral_batch.plugins.connection_test import without_unset_port
from mistral_batch_emulator import RunningEmulator

pytestmark = pytest.mark.integration

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def stored(
    monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator
) -> Iterator[Callable[..., str]]:
    """``stored(key, host=emulator)``: a ``mistral`` connection saved in the DB as the UI's
    form saves it (no port); returns its id."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    made: list[str] = []

    def store(key: str, host: str = emulator.base_url) -> str:
        conn_id = f"mistral_ui_{uuid.uuid4().hex[:8]}"
        with create_session() as session:
            session.add(Connection(conn_id=conn_id, conn_type="mistral", host=host, password=key))
        made.append(conn_id)
        return conn_id

    yield store
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(made)).delete()


def _as_the_list_sends_it(api: TestClient, headers: dict[str, str], conn_id: str) -> Any:
    """The body of the list row's Test button (Airflow 3.1-3.3 UI): the connection as the
    API lists it, the password masked, ``port`` as ``Number(port)``, which is 0 for none."""
    listed = api.get(f"/api/v2/connections/{conn_id}", headers=headers).json()
    body = {
        "conn_type": listed["conn_type"],
        "connection_id": listed["connection_id"],
        "description": listed["description"] or "",
        "extra": listed["extra"] or "{}",
        "host": listed["host"] or "",
        "login": listed["login"] or "",
        "password": listed["password"] or "",
        "port": 0,
        "schema": listed["schema"] or "",
    }
    assert listed["port"] is None
    assert body["password"] == "***"
    return api.post("/api/v2/connections/test", json=body, headers=headers)


def test_the_ui_test_button_works_for_a_good_key(
    api: TestClient, as_user: Headers, stored: Callable[..., str], emulator: RunningEmulator
) -> None:
    conn_id = stored(emulator.api_key)
    response = _as_the_list_sends_it(api, as_user("admin"), conn_id)
    assert response.status_code == 200, response.text
    assert response.json()["status"] is True, response.text
    assert emulator.base_url in response.json()["message"]


def test_the_ui_test_button_names_a_refused_key_without_showing_it(
    api: TestClient, as_user: Headers, stored: Callable[..., str], emulator: RunningEmulator
) -> None:
    secret = "sk-wrong-" + uuid.uuid4().hex
    conn_id = stored(secret)
    response = _as_the_list_sends_it(api, as_user("admin"), conn_id)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] is False
    assert "refused the API key (HTTP 401)" in answer["message"]
    assert secret not in response.text


def test_the_ui_test_button_names_a_server_it_cannot_reach_without_showing_the_key(
    api: TestClient, as_user: Headers, stored: Callable[..., str]
) -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    secret = "sk-" + uuid.uuid4().hex
    conn_id = stored(secret, host=closed)
    response = _as_the_list_sends_it(api, as_user("admin"), conn_id)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] is False
    assert f"Could not reach the Mistral API at {closed}" in answer["message"]
    assert "Base URL" in answer["message"]
    assert secret not in response.text


def test_only_a_mistral_test_request_loses_its_zero_port() -> None:
    body = {"conn_type": "mistral", "connection_id": "m", "host": "h", "port": 0}
    fixed = without_unset_port(json.dumps(body).encode())
    assert fixed is not None
    assert "port" not in json.loads(fixed)
    assert json.loads(fixed)["host"] == "h"
    for untouched in (
        {**body, "conn_type": "http"},  # another type may use its port
        {**body, "port": 8443},
        {**body, "port": None},
        ["not", "an", "object"],
    ):
        assert without_unset_port(json.dumps(untouched).encode()) is None
    assert without_unset_port(b"{not json") is None
