"""Pytest plugin loaded before any conftest: a private Airflow home for the test session.

Airflow reads its home and DAGs folder when first imported, so this must run before that
import. The home is always a new temporary folder, never one set in the environment: the DAG
tests migrate its database and copy DAG files into its ``dags`` folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_home = Path(tempfile.mkdtemp(prefix="mistral-batch-airflow-"))
(_home / "dags").mkdir()
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_home / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
for _name in [name for name in os.environ if name.startswith("AIRFLOW_CONN_")]:
    # A connection defined in the developer's shell must not leak into the tests.
    del os.environ[_name]
