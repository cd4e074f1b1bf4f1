"""Pytest plugin loaded before any conftest: a private Airflow home for the test session.

Airflow reads its home and DAGs folder when first imported, so this must run before that
import. The DAGs folder starts empty; the DAG tests copy the DAG files they run into it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_home = Path(os.environ.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="mistral-batch-airflow-"))
(_home / "dags").mkdir(parents=True, exist_ok=True)
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_home / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
