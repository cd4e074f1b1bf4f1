"""``mistral-batch-emulator``: serve the emulator from the shell until Ctrl-C."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from mistral_batch_emulator.app import create_app
from mistral_batch_emulator.catalog import ANY_MODEL
from mistral_batch_emulator.config import EmulatorConfig
from mistral_batch_emulator.config_file import (
    ConfigError,
    config_as_json,
    layered_config,
)

# (argparse dest, EmulatorConfig field, flag) of every flag that sets a config field.
# Their argparse default is None, so "not given" is told apart from "given the default"
# and a value from --config is overridden only by a flag actually on the command line.
_CONFIG_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("api_key", "api_key", "--api-key"),
    ("rps", "requests_per_second", "--rps"),
    ("latency", "latency_seconds", "--latency"),
    ("queue_seconds", "queue_seconds", "--queue-seconds"),
    ("fault_rate", "fault_rate", "--fault-rate"),
    ("failing_custom_id", "failing_custom_ids", "--failing-custom-id"),
    ("broken_output_custom_id", "broken_output_custom_ids", "--broken-output-custom-id"),
    ("flaky_custom_id", "flaky_custom_ids", "--flaky-custom-id"),
    ("seconds_per_timeout_hour", "seconds_per_timeout_hour", "--seconds-per-timeout-hour"),
    ("data_dir", "data_dir", "--data-dir"),
    ("seed", "seed", "--seed"),
    ("model", "models", "--model"),
)


class _PairAction(argparse.Action):
    """``ID=VALUE``, repeatable, gathered into a dict (the last value of an ID wins)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        key, sep, value = str(values).rpartition("=")
        if not sep or not key:
            parser.error(f"{option_string}: expected ID={self.metavar_value}, got {values!r}")
        pairs = dict(getattr(namespace, self.dest, None) or {})
        pairs[key] = value
        setattr(namespace, self.dest, pairs)

    @property
    def metavar_value(self) -> str:
        return str(self.metavar).partition("=")[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mistral-batch-emulator",
        description="Serve a local emulator of Mistral's Files and Batch API.",
        epilog="Flags given on the command line override the values of --config.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="JSON file of EmulatorConfig fields (faults, fault_pool, error_line_style, ...)",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective config as JSON and exit"
    )
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--api-key", help="Bearer token accepted (default emulator-key)")
    keys.add_argument("--any-key", action="store_true", help="accept any non-empty Bearer token")
    models = parser.add_mutually_exclusive_group()
    models.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="a model name jobs may use (repeatable; replaces the default list of "
        "Mistral's public models and the file's list)",
    )
    models.add_argument(
        "--any-model", action="store_true", help=f'accept any model name (models: ["{ANY_MODEL}"])'
    )
    _add_config_flags(parser)
    return parser


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that set one config field each (api key flags aside)."""
    parser.add_argument(
        "--rps", type=float, help="requests a running job completes per second (default 500)"
    )
    parser.add_argument("--latency", type=float, help="seconds added to every API response")
    parser.add_argument("--queue-seconds", type=float, help="seconds a job stays QUEUED")
    parser.add_argument(
        "--fault-rate", type=float, help="probability of a random fault of fault_pool (429/503/500)"
    )
    parser.add_argument(
        "--failing-custom-id",
        action="append",
        metavar="ID",
        help="a custom_id whose request fails (repeatable; replaces the file's list)",
    )
    parser.add_argument(
        "--broken-output-custom-id",
        action=_PairAction,
        metavar="ID=KIND",
        help="a custom_id whose answer is broken: KIND not_json or wrong_shape (repeatable; "
        "replaces the file's mapping)",
    )
    parser.add_argument(
        "--flaky-custom-id",
        action=_PairAction,
        metavar="ID=N",
        help="a custom_id whose request fails with a 503 the first N times it is answered, "
        "then succeeds (repeatable; replaces the file's mapping)",
    )
    parser.add_argument(
        "--seconds-per-timeout-hour",
        type=float,
        help="real seconds per hour of a job's timeout_hours (default 3600)",
    )
    parser.add_argument("--data-dir", type=Path, help="where file contents go (default: temp)")
    parser.add_argument("--seed", type=int, help="seed of the random faults (default 0)")


def _flag_overrides(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The config fields the command line sets explicitly, and the flag that set each."""
    overrides: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for dest, field, flag in _CONFIG_FLAGS:
        value = getattr(args, dest, None)
        if value is not None:
            overrides[field] = value
            labels[field] = flag
    if getattr(args, "any_key", False):
        overrides["api_key"] = None
        labels["api_key"] = "--any-key"
    if getattr(args, "any_model", False):
        overrides["models"] = [ANY_MODEL]
        labels["models"] = "--any-model"
    return overrides, labels


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator config the command line asks for: ``--config``, then explicit flags.

    :raises ConfigError: naming the file or flag and the field when the result is invalid.
    """
    overrides, labels = _flag_overrides(args)
    return layered_config(getattr(args, "config", None), overrides, labels)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve until interrupted (or print the config and exit)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))  # exits with status 2, like any argparse error
    if args.print_config:
        print(json.dumps(config_as_json(config), indent=2))
        return
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Mistral batch emulator: http://{host}:{args.port}")
    key = "any non-empty key" if config.api_key is None else config.api_key
    print(f"API key: {key}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
