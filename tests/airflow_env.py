"""Pytest plugin loaded before any conftest: a private Airflow home for the test session.

Airflow reads its configuration when first imported, so this must run before that import.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mistral-batch-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
