"""Demo: one batch job through the local Mistral emulator with the provider's hook.

Starts the emulator on a free loopback port, points the ``mistral_default`` connection at it,
uploads a JSONL of chat requests, creates a job, waits for it while printing progress,
downloads the output file and prints a few results.

Run it inside the project's virtualenv (``scripts/demo.sh`` makes it):
``.venv/bin/python scripts/hook_demo.py [--requests N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _prepare_airflow_env(home: Path, base_url: str, api_key: str) -> None:
    # Airflow reads these when first imported, so they are set before the hook is imported.
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ["AIRFLOW_CONN_MISTRAL_DEFAULT"] = json.dumps(
        {"conn_type": "mistral", "host": base_url, "password": api_key}
    )


def _write_requests(path: Path, count: int) -> None:
    questions = [
        "What is the best French cheese?",
        "Which wine goes with comte?",
        "Name a river in Burgundy.",
        "How long does brie take to ripen?",
    ]
    with path.open("w", encoding="utf-8") as handle:
        for index in range(count):
            body = {
                "max_tokens": 64,
                "messages": [{"role": "user", "content": questions[index % len(questions)]}],
            }
            handle.write(json.dumps({"custom_id": f"q-{index}", "body": body}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="requests in the batch")
    parser.add_argument("--rps", type=float, default=25.0, help="emulator requests per second")
    args = parser.parse_args()

    from mistral_batch_emulator import EmulatorConfig, run_emulator

    workdir = Path(tempfile.mkdtemp(prefix="mistral-batch-demo-"))
    config = EmulatorConfig(requests_per_second=args.rps, failing_custom_ids={"q-7"})
    with run_emulator(config) as emulator:
        _prepare_airflow_env(workdir / "airflow-home", emulator.base_url, emulator.api_key)
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
        from airflow_provider_mistral_batch.models import BatchResultLine

        print(f"Mistral emulator listening on {emulator.base_url}")
        hook = MistralBatchHook()

        input_path = workdir / "requests.jsonl"
        _write_requests(input_path, args.requests)
        uploaded = hook.upload_file(input_path)
        print(f"Uploaded {input_path.name}: file {uploaded.id}, {uploaded.num_lines} lines")

        job = hook.create_batch_job(
            endpoint="/v1/chat/completions",
            input_files=[uploaded.id],
            model="mistral-small-latest",
            metadata={"demo": "airflow-provider-mistral-batch"},
        )
        print(f"Created batch job {job.id} (status {job.status})")

        last = None
        while not job.status.is_terminal:
            time.sleep(0.5)
            job = hook.get_batch_job(job.id)
            line = (
                f"  {job.status}: {job.completed_requests}/{job.total_requests} done, "
                f"{job.failed_requests} failed"
            )
            if line != last:
                print(line)
                last = line

        print(
            f"\nJob {job.id} ended {job.status}: {job.succeeded_requests} succeeded, "
            f"{job.failed_requests} failed of {job.total_requests}"
        )
        print(f"output_file: {job.output_file}")
        print(f"error_file:  {job.error_file}")
        if not job.status.is_success or job.output_file is None:
            print("The job did not succeed.", file=sys.stderr)
            return 1

        output_path = workdir / "output.jsonl"
        size = hook.download_file(job.output_file, output_path)
        print(f"Downloaded the output ({size:,} bytes) to {output_path}\n")
        print("A few results:")
        with output_path.open(encoding="utf-8") as handle:
            for _, raw in zip(range(3), handle, strict=False):
                result = BatchResultLine.model_validate_json(raw)
                body = result.response.body if result.response else None
                answer = body["choices"][0]["message"]["content"] if body else None
                print(f"  {result.custom_id}: {answer}")
        if job.error_file:
            print("\nErrors:")
            for raw in hook.iter_file_lines(job.error_file):
                failed = BatchResultLine.model_validate_json(raw)
                print(f"  {failed.custom_id}: {failed.error_message}")
        hook.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
