"""The README's main command: scripts/demo.py end to end, as a new user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def test_demo_runs_both_dags_and_prints_jobs_xcoms_and_results(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 (our own script, run with this interpreter)
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--rps", "100"],
        # Its Airflow home and downloads go under pytest's tmp_path, not /tmp.
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert out.count(": success\n") == 2  # both DAG runs
    assert re.search(r"Job \S+: SUCCESS, endpoint /v1/chat/completions", out)
    assert re.search(r"Job \S+: SUCCESS, endpoint /v1/embeddings", out)
    assert "requests: 5 total, 4 succeeded, 1 failed" in out
    assert "question-3: request question-3 failed" in out
    assert re.search(r"input files: [0-9a-f-]{36}\n", out)  # the JSONL was uploaded
    downloaded = re.search(r"Output file downloaded to (\S+); its first lines:", out)
    assert downloaded, out
    assert re.search(r"  doc-0: \d+-dimension vector \[", out)
