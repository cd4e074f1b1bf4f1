"""Bench: what importing this provider's operators costs every DAG file that uses them.

Each measurement is a fresh interpreter that first imports ``airflow.sdk`` (every DAG file pays
that anyway) and then times one import, from cached bytecode (one unmeasured run first writes
it). Prints the median of several runs.

    .venv/bin/python bench/import_cost.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

MODULES = [
    "airflow_provider_mistral_batch.operators.batch",
    "airflow_provider_mistral_batch.sensors.batch",
    "airflow_provider_mistral_batch.decorators.mistral_batch",
    "airflow_provider_mistral_batch.hooks.mistral_batch",
    "airflow.providers.standard.operators.python",
]

PROBE = """
import sys, time
import airflow.sdk
start = time.perf_counter()
__import__(sys.argv[1])
print((time.perf_counter() - start) * 1000)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ, AIRFLOW_HOME=tempfile.mkdtemp(prefix="bench-airflow-"))
    # As a deployment imports: from cached bytecode. Without it (PYTHONDONTWRITEBYTECODE set,
    # as on some CI machines) this provider's editable source is compiled at every import,
    # while the installed packages it is compared with have their bytecode.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for module in MODULES:
        times = []
        for run in range(args.runs + 1):
            out = subprocess.run(  # noqa: S603 - this interpreter, fixed probe
                [sys.executable, "-c", PROBE, module],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout
            if run:  # the first one writes the bytecode
                times.append(float(out.strip().splitlines()[-1]))
        print(f"{module:<55} median {statistics.median(times):6.1f} ms over {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
