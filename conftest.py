"""Session-wide fixtures: one emulator for every test that asks for it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mistral_batch_emulator import EmulatorConfig, RunningEmulator, run_emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    """A fast emulator on a free loopback port, shared by the session."""
    with run_emulator(EmulatorConfig(requests_per_second=50_000.0)) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test that uses the emulator starts with no files, jobs, faults or request log."""
    if "emulator" not in request.fixturenames:
        yield
        return
    running: RunningEmulator = request.getfixturevalue("emulator")
    running.reset()
    yield
    running.set_faults([])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The deployment and browser tests run first, or last with ``MISTRAL_DEPLOYMENTS_LAST=1``.

    scripts/test.sh tests two Airflow versions at once and sets it for the second, so that its
    deployments come when the first run's are long over (they share the machine and a lock).
    """
    last = os.environ.get("MISTRAL_DEPLOYMENTS_LAST") == "1"
    items.sort(key=lambda item: (item.get_closest_marker("deployment") is None) != last)
