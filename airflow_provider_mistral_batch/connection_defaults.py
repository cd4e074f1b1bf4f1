"""Defaults of a ``mistral`` connection.

Imports nothing (Airflow included): ``get_provider_info`` reads it while Airflow itself is
still being imported.
"""

from __future__ import annotations

from typing import Final

DEFAULT_CONN_ID: Final = "mistral_default"
DEFAULT_BASE_URL: Final = "https://api.mistral.ai"
DEFAULT_CONSOLE_URL: Final = "https://console.mistral.ai"
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 4
