"""A local emulator of Mistral's Files and Batch API, for tests, demos and offline work.

Start it in-process with :func:`run_emulator`, or from the shell with
``mistral-batch-emulator``. Its server imports only :mod:`airflow_provider_mistral_batch.models`
from the provider, and nothing in the provider imports it. :mod:`.dagtest` (``dag.test()``
helpers) is the one module that imports Airflow; the server never imports it.
"""

from __future__ import annotations

# Before the imports below: app.py reads it while this package is still initialising.
__version__ = "0.1.0"

from mistral_batch_emulator.app import create_app
from mistral_batch_emulator.config import EmulatorConfig, Fault
from mistral_batch_emulator.server import RunningEmulator, run_emulator
from mistral_batch_emulator.state import RecordedRequest

__all__ = [
    "EmulatorConfig",
    "Fault",
    "RecordedRequest",
    "RunningEmulator",
    "__version__",
    "create_app",
    "run_emulator",
]
