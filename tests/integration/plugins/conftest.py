"""Fixtures of the UI plugin tests: Airflow's own api-server app, in this process.

``api`` is the app ``airflow api-server`` serves (``create_app``), with the plugin mounted by
Airflow's plugin manager and the simple auth manager: users log in with a password at
``/auth/token`` and get real JWTs. The plugin's jobs live on the session's emulator.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import load_dag, migrate_db, stage_dags, task_states
from tests.helpers import set_connection, wait_for_terminal

#: user name -> role of the simple auth manager (``nobody`` has a token but no role).
ROLES = {"admin": "admin", "op": "op", "user": "user", "viewer": "viewer"}
CONN_ID = "mistral_default"
DAG_FILES = Path(__file__).parent / "dag_files"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


@pytest.fixture(scope="session")
def api() -> Iterator[TestClient]:
    """A client of Airflow's api-server app (the plugin mounted at ``/mistral-batch``)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    passwords = home / "plugin-test-passwords.json"
    passwords.write_text(json.dumps({name: f"{name}-password" for name in ROLES}))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE_AUTH_MANAGER)
        env.setenv(
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
            ",".join(f"{name}:{role}" for name, role in ROLES.items()),
        )
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(64))
        stage_dags(DAG_FILES, into=Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]))
        migrate_db()
        from airflow.api_fastapi.app import create_app, purge_cached_app

        try:
            yield TestClient(create_app("core"), base_url="http://airflow.test")
        finally:
            purge_cached_app()


@pytest.fixture(scope="session")
def tokens(api: TestClient) -> dict[str, str]:
    """A JWT per user, from the login route; ``nobody``'s is signed by the auth manager for a
    user with no role (authenticated, allowed nothing)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    found = {}
    for name in ROLES:
        response = api.post("/auth/token", json={"username": name, "password": f"{name}-password"})
        assert response.status_code == 201, response.text
        found[name] = response.json()["access_token"]
    nobody = SimpleAuthManagerUser(username="nobody", role=None)
    found["nobody"] = get_auth_manager().generate_jwt(nobody)
    return found


@pytest.fixture
def as_user(tokens: dict[str, str]) -> Callable[[str], dict[str, str]]:
    """``as_user("viewer")``: the Authorization header of that user."""
    return lambda name: {"Authorization": f"Bearer {tokens[name]}"}


@pytest.fixture
def mistral(monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator) -> RunningEmulator:
    """The ``mistral_default`` connection pointed at the (clean) emulator."""
    set_connection(monkeypatch, emulator, conn_id=CONN_ID)
    return emulator


@pytest.fixture
def hook(mistral: RunningEmulator) -> Iterator[MistralBatchHook]:
    with MistralBatchHook(CONN_ID) as made:
        yield made


TASK_METADATA = {
    "airflow_dag_id": "some_dag",
    "airflow_run_id": "manual__2026-01-02T03:04:05+00:00",
    "airflow_task_id": "group.ask",
    "airflow_map_index": "-1",
}


def chat_requests(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    return [{"custom_id": f"{prefix}{i}", "body": body} for i in range(count)]


def make_job(
    hook: MistralBatchHook, *, metadata: dict[str, str] | None = None, count: int = 3
) -> BatchJob:
    """A job on the emulator, ended."""
    job = hook.create_batch_job(
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=chat_requests(count),
        metadata=metadata,
    )
    return wait_for_terminal(hook, job.id)


def make_running_job(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    *,
    metadata: dict[str, str] | None = None,
) -> BatchJob:
    """A job that stays RUNNING (the emulator slowed down to almost nothing)."""
    emulator.update_config(requests_per_second=0.001)
    job = hook.create_batch_job(
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=chat_requests(5),
        metadata=metadata,
    )
    for _ in range(200):
        job = hook.get_batch_job(job.id)
        if job.status == BatchJobStatus.RUNNING and job.total_requests:
            return job
        time.sleep(0.02)
    pytest.fail(f"job {job.id} did not start running: {job.status}")


@pytest.fixture
def run_dag(api: TestClient, mistral: RunningEmulator) -> Callable[[str], Any]:
    """``run_dag(dag_id)``: one ``dag.test()`` run of a DAG of ``dag_files/``, against the
    emulator; returns the DAG run."""
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    (Path(os.environ["AIRFLOW_HOME"]) / "plugin-ui-results").mkdir(exist_ok=True)

    def run(dag_id: str) -> Any:
        dag_run = load_dag(dags_folder, dag_id).test()
        assert str(dag_run.state) == "success", task_states(dag_run)
        return dag_run

    return run
