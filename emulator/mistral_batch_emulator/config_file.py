"""An emulator config from a JSON file, with overrides (command-line flags) layered on top."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from mistral_batch_emulator.config import EmulatorConfig


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file or flag and the field."""


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a JSON config file holds (names checked, values not yet validated)."""
    where = f"--config {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc}") from None
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(settings, dict):
        raise ConfigError(
            f"{where}: expected a JSON object of EmulatorConfig fields, "
            f"got {type(settings).__name__}"
        )
    # EmulatorConfig ignores unknown names; in a file they are typos worth reporting.
    unknown = sorted(set(settings) - set(EmulatorConfig.model_fields))
    if unknown:
        known = ", ".join(EmulatorConfig.model_fields)
        names = ", ".join(repr(name) for name in unknown)
        raise ConfigError(f"{where}: unknown field {names} (fields: {known})")
    return settings


def layered_config(
    path: Path | None, overrides: Mapping[str, Any], labels: Mapping[str, str]
) -> EmulatorConfig:
    """The file's settings (if any) with ``overrides`` on top, validated as one config.

    :param path: the JSON file, or None for the defaults.
    :param overrides: field name -> value that wins over the file.
    :param labels: field name -> how to name the source of an override in an error.
    """
    settings = read_config_file(path) if path is not None else {}
    try:
        return EmulatorConfig.model_validate({**settings, **overrides})
    except ValidationError as exc:
        problems = [_describe(error, path, overrides, labels) for error in exc.errors()]
        raise ConfigError("; ".join(problems)) from None


def _describe(
    error: ErrorDetails, path: Path | None, overrides: Mapping[str, Any], labels: Mapping[str, str]
) -> str:
    """One validation error, named by where its value came from."""
    loc = [str(part) for part in error["loc"]]
    field = loc[0] if loc else ""
    if field in overrides:
        source = labels.get(field, field)
        detail = ".".join(loc[1:])
        return f"{source}{': ' + detail if detail else ''}: {error['msg']}"
    where = f"--config {path}" if path is not None else "config"
    return f"{where}: field {'.'.join(loc) or '(root)'}: {error['msg']}"


def config_as_json(config: EmulatorConfig) -> dict[str, Any]:
    """The config as plain JSON (reloadable with ``--config``); sets are sorted lists."""
    data = config.model_dump(mode="json")
    data["failing_custom_ids"] = sorted(config.failing_custom_ids)
    return data


__all__ = ["ConfigError", "config_as_json", "layered_config", "read_config_file"]
