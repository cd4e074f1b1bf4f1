"""``mistral-batch-emulator``: serve the emulator from the shell until Ctrl-C."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from airflow_provider_mistral_batch.emulator.app import create_app
from airflow_provider_mistral_batch.emulator.config import EmulatorConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mistral-batch-emulator",
        description="Serve a local emulator of Mistral's Files and Batch API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    parser.add_argument(
        "--api-key", default="emulator-key", help="Bearer token accepted (default emulator-key)"
    )
    parser.add_argument("--any-key", action="store_true", help="accept any non-empty Bearer token")
    parser.add_argument(
        "--rps", type=float, default=500.0, help="requests a running job completes per second"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every API response"
    )
    parser.add_argument(
        "--queue-seconds", type=float, default=0.0, help="seconds a job stays QUEUED"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="probability of a random 429/503/500 on an API request",
    )
    parser.add_argument(
        "--failing-custom-id",
        action="append",
        default=[],
        metavar="ID",
        help="a custom_id whose request fails (repeatable)",
    )
    parser.add_argument(
        "--seconds-per-timeout-hour",
        type=float,
        default=3600.0,
        help="real seconds per hour of a job's timeout_hours (default 3600)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where file contents go (default: temp)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator config the command line asks for."""
    return EmulatorConfig(
        api_key=None if args.any_key else args.api_key,
        requests_per_second=args.rps,
        latency_seconds=args.latency,
        queue_seconds=args.queue_seconds,
        fault_rate=args.fault_rate,
        failing_custom_ids=set(args.failing_custom_id),
        seconds_per_timeout_hour=args.seconds_per_timeout_hour,
        data_dir=args.data_dir,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve until interrupted."""
    args = _parser().parse_args(argv)
    config = config_from_args(args)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Mistral batch emulator: http://{host}:{args.port}")
    key = "any non-empty key" if config.api_key is None else config.api_key
    print(f"API key: {key}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
