"""Fixtures of the emulator tests: an authenticated loopback client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from emulator.tests.support import Api
from mistral_batch_emulator import RunningEmulator


@pytest.fixture
def http(emulator: RunningEmulator) -> Iterator[httpx2.Client]:
    """A client sending the emulator's key."""
    with httpx2.Client(
        base_url=emulator.base_url,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=10.0,
    ) as client:
        yield client


@pytest.fixture
def api(http: httpx2.Client) -> Api:
    """The REST helper over ``http``."""
    return Api(http)
