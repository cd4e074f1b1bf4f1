"""A local emulator of Mistral's Files and Batch API, for tests, demos and offline work.

Start it in-process with :func:`run_emulator`, or from the shell with
``mistral-batch-emulator``. It imports only :mod:`airflow_provider_mistral_batch.models`
from this package; nothing in production code imports it.
"""

from __future__ import annotations

from airflow_provider_mistral_batch.emulator.app import create_app
from airflow_provider_mistral_batch.emulator.config import EmulatorConfig, Fault
from airflow_provider_mistral_batch.emulator.server import RunningEmulator, run_emulator
from airflow_provider_mistral_batch.emulator.state import RecordedRequest

__all__ = [
    "EmulatorConfig",
    "Fault",
    "RecordedRequest",
    "RunningEmulator",
    "create_app",
    "run_emulator",
]
