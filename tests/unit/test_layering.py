"""Who may import whom inside the provider (DESIGN.md's layers), read from the source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "airflow_provider_mistral_batch"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(path: Path) -> set[str]:
    """Every module of this package that ``path`` imports, lazily or not."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    modules = {_module_name(p) for p in ROOT.rglob("*.py")}
    return {name for name in found if name in modules and name != PACKAGE}


IMPORTS = {_module_name(path): _imports_of(path) for path in ROOT.rglob("*.py")}


def _importers_of(prefix: str) -> set[str]:
    return {
        module
        for module, imported in IMPORTS.items()
        if any(name == prefix or name.startswith(prefix + ".") for name in imported)
    }


def test_the_source_was_read() -> None:
    assert f"{PACKAGE}.hooks.mistral_batch" in IMPORTS
    assert f"{PACKAGE}.models" in IMPORTS[f"{PACKAGE}.hooks.mistral_batch"]


def test_models_import_nothing_of_ours() -> None:
    assert IMPORTS[f"{PACKAGE}.models"] == set()


def test_exceptions_import_only_the_airflow_compat_names() -> None:
    assert IMPORTS[f"{PACKAGE}.exceptions"] <= {f"{PACKAGE}.utils.compat"}


@pytest.mark.parametrize("upper", ["operators", "sensors", "triggers", "plugins"])
def test_the_hook_and_the_shared_helpers_never_import_upwards(upper: str) -> None:
    low = {m for m in IMPORTS if m.startswith((f"{PACKAGE}.hooks", f"{PACKAGE}.utils"))}
    assert not (_importers_of(f"{PACKAGE}.{upper}") & low)


def test_http_mechanics_do_not_import_the_hook() -> None:
    http = {m for m in IMPORTS if m.startswith(f"{PACKAGE}.utils.http")}
    assert http
    assert not (_importers_of(f"{PACKAGE}.hooks") & http)


def test_only_the_api_server_loads_the_ui_plugin() -> None:
    # Operators, sensors and triggers run in workers and triggerers, which never serve the UI;
    # the plugin reads what they leave (XCom keys, job metadata) from utils, never from them.
    plugin = {m for m in IMPORTS if m.startswith(f"{PACKAGE}.plugins")}
    assert plugin
    assert _importers_of(f"{PACKAGE}.plugins") <= plugin
    for task_side in ("operators", "sensors", "triggers"):
        assert not (_importers_of(f"{PACKAGE}.{task_side}") & plugin), task_side


def test_operators_and_sensors_never_import_each_other() -> None:
    assert not (_importers_of(f"{PACKAGE}.sensors") & {f"{PACKAGE}.operators.batch"})
    assert not (_importers_of(f"{PACKAGE}.operators") & {f"{PACKAGE}.sensors.batch"})


def test_the_waiting_core_makes_no_calls_of_its_own() -> None:
    # reattach gives it the rule of which duplicate job to keep; reattach names the hook
    # for its types only, so no HTTP code comes along (checked at run time below).
    assert IMPORTS[f"{PACKAGE}.utils.watch"] <= {
        f"{PACKAGE}.exceptions",
        f"{PACKAGE}.models",
        f"{PACKAGE}.utils.options",
        f"{PACKAGE}.utils.reattach",
    }
    assert IMPORTS[f"{PACKAGE}.utils.options"] <= {f"{PACKAGE}.exceptions"}
    assert IMPORTS[f"{PACKAGE}.utils.reattach"] <= {
        f"{PACKAGE}.models",
        f"{PACKAGE}.hooks.mistral_batch",
    }


def test_importing_the_waiting_core_loads_neither_the_hook_nor_our_http_code() -> None:
    code = (
        f"import sys, {PACKAGE}.utils.watch; "
        f"print(sorted(m for m in sys.modules if m.startswith(('{PACKAGE}.hooks', "
        f"'{PACKAGE}.utils.http'))))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    )
    assert result.stdout.strip() == "[]"


def test_nothing_in_the_provider_imports_the_emulator() -> None:
    for path in ROOT.rglob("*.py"):
        assert "mistral_batch_emulator" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("module", ["operators.batch", "sensors.batch"])
def test_a_dag_file_does_not_load_the_waiting_core_or_the_hook(module: str) -> None:
    # Every DAG file that uses these pays their import at every parse; only a run needs these.
    code = (
        f"import sys, {PACKAGE}.{module}; "
        f"print(sorted(m for m in sys.modules if m in ('{PACKAGE}.utils.watch', "
        f"'{PACKAGE}.utils.reattach', '{PACKAGE}.hooks.mistral_batch', "
        f"'{PACKAGE}.utils.input', '{PACKAGE}.utils.outcome')))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
