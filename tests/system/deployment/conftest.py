"""One real Airflow deployment (api-server, scheduler, dag-processor, triggerer) per module.

It costs 15-30 s to start on two cores, so every test of a module shares it. A browser test
can reuse the same harness: ``running_deployment`` yields the api-server's base URL, a REST
client with a token, the emulator, the home and a task log reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.deployment.harness import RunningDeployment, running_deployment

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent

# The example DAGs the tests run (the embeddings example, blocking, adds nothing here).
DAG_IDS = (
    "example_mistral_batch_chat",
    "example_mistral_batch_sensor_cancel",
    "example_mistral_batch_mapped",
    "example_mistral_batch_typed",
    "example_mistral_batch_taskflow",
    "example_common_ai_mistral",
    "deployment_fast_jobs",  # tests/system/deployment/dags: jobs that end right after the deferral
)


@pytest.fixture(scope="module")
def airflow_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDeployment]:
    """Airflow with the example DAGs (parsed and unpaused) and an emulator behind
    ``mistral_default``; killed, with everything it started, after the module."""
    home = tmp_path_factory.mktemp("airflow-deployment")
    (home / "results").mkdir()
    env = {
        # The chat example writes its joined results here (read when the DAG file is parsed).
        "MISTRAL_EXAMPLE_RESULTS": f"file://{home}/results",
        "MISTRAL_EXAMPLE_POLL_SECONDS": "1",
    }
    folders = [REPO / "example_dags", HERE / "dags"]
    with running_deployment(home, folders, DAG_IDS, extra_env=env) as deployment:
        yield deployment
