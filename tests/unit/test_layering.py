"""Who may import whom inside the provider (DESIGN.md's floors), read from the source.

Floors, lowest first; a module imports only from its own floor or lower ones:
0. ``models``, ``connection_form``, ``utils.compat``, ``utils.redact``, ``utils.wording``:
   import nothing of ours (but each other).
1. ``exceptions`` and the other ``utils`` helpers (paths, templating).
2. ``hooks``: the hook, its HTTP transport (``hooks.http``) and its connection settings.
3. ``batch``: the domain (input, identity, waiting, watcher, results, verdict, manifest).
4. the faces: ``operators``, ``sensors``, ``triggers``, ``decorators``, ``plugins``, ``links``,
   ``common_ai`` (the adapter of Airflow's common-ai provider).
5. ``get_provider_info`` and the package itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "airflow_provider_mistral_batch"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

FLOOR_0 = ("models", "connection_form", "utils.compat", "utils.redact", "utils.wording")
FLOOR_1 = ("exceptions", "utils")
FLOOR_2 = ("hooks",)
FLOOR_3 = ("batch",)
FLOOR_4 = ("operators", "sensors", "triggers", "decorators", "plugins", "links", "common_ai")
FLOOR_5 = ("get_provider_info", "")


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


def floor_of(module: str) -> int:
    """The floor of one of our modules (see the module docstring)."""
    local = module.removeprefix(PACKAGE).removeprefix(".")
    for floor, prefixes in enumerate((FLOOR_0, FLOOR_1, FLOOR_2, FLOOR_3, FLOOR_4)):
        if any(local == prefix or local.startswith(prefix + ".") for prefix in prefixes):
            return floor
    if local in FLOOR_5:
        return 5
    raise AssertionError(f"{module} is on no floor: add it to tests/unit/test_layering.py")


def _importers_of(prefix: str) -> set[str]:
    return {
        module
        for module, imported in IMPORTS.items()
        if any(name == prefix or name.startswith(prefix + ".") for name in imported)
    }


def test_the_source_was_read() -> None:
    assert f"{PACKAGE}.hooks.mistral_batch" in IMPORTS
    assert f"{PACKAGE}.models" in IMPORTS[f"{PACKAGE}.hooks.mistral_batch"]


def test_floor_of_knows_the_floors() -> None:
    assert floor_of(f"{PACKAGE}.models") == 0
    assert floor_of(f"{PACKAGE}.utils.paths") == 1
    assert floor_of(f"{PACKAGE}.hooks.http.calls") == 2
    assert floor_of(f"{PACKAGE}.batch.waiting") == 3
    assert floor_of(f"{PACKAGE}.operators.batch") == 4
    with pytest.raises(AssertionError, match="on no floor"):
        floor_of(f"{PACKAGE}.somewhere_new")


def test_every_module_is_on_a_floor() -> None:
    for module in IMPORTS:
        floor_of(module)


def test_no_module_imports_from_a_floor_above_it() -> None:
    upward = sorted(
        f"{module} (floor {floor_of(module)}) imports {name} (floor {floor_of(name)})"
        for module, imported in IMPORTS.items()
        for name in imported
        if floor_of(name) > floor_of(module)
    )
    assert upward == []


def test_models_import_nothing_of_ours() -> None:
    assert IMPORTS[f"{PACKAGE}.models"] == set()


def test_exceptions_import_only_the_airflow_compat_names() -> None:
    assert IMPORTS[f"{PACKAGE}.exceptions"] <= {f"{PACKAGE}.utils.compat"}


def test_http_mechanics_do_not_import_the_hook() -> None:
    http = {m for m in IMPORTS if m.startswith(f"{PACKAGE}.hooks.http")}
    assert http
    assert not (_importers_of(f"{PACKAGE}.hooks.mistral_batch") & http)


def test_only_the_api_server_loads_the_ui_plugin() -> None:
    # Operators, sensors and triggers run in workers and triggerers, which never serve the UI;
    # the plugin reads what they leave (XCom keys, job metadata) from the domain, never from them.
    plugin = {m for m in IMPORTS if m.startswith(f"{PACKAGE}.plugins")}
    assert plugin
    assert _importers_of(f"{PACKAGE}.plugins") <= plugin
    for face in ("operators", "sensors", "triggers"):
        assert not (_importers_of(f"{PACKAGE}.{face}") & plugin), face


def test_operators_and_sensors_never_import_each_other() -> None:
    operators = {m for m in IMPORTS if m.startswith(f"{PACKAGE}.operators")}
    sensors = {m for m in IMPORTS if m.startswith(f"{PACKAGE}.sensors")}
    assert operators
    assert sensors
    assert not (_importers_of(f"{PACKAGE}.sensors") & operators)
    assert not (_importers_of(f"{PACKAGE}.operators") & sensors)


def test_importing_the_waiting_core_loads_neither_the_hook_nor_our_http_code() -> None:
    # The waiting core decides and does no I/O: the trigger, the blocking wait and the sensor
    # drive it. Nothing of the hook or the HTTP transport comes along with it.
    code = (
        f"import sys, {PACKAGE}.batch.waiting; "
        f"print(sorted(m for m in sys.modules if m.startswith('{PACKAGE}.hooks')))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    )
    assert result.stdout.strip() == "[]"


def test_nothing_in_the_provider_imports_the_emulator() -> None:
    for path in ROOT.rglob("*.py"):
        assert "mistral_batch_emulator" not in path.read_text(encoding="utf-8"), path


#: What a DAG file may load of the domain: the options its operators check at parse time.
PARSE_TIME_DOMAIN = (
    f"{PACKAGE}.batch.wait_options",
    f"{PACKAGE}.batch.submit_options",
    f"{PACKAGE}.batch.endpoint",
    # output_type is checked at parse (a type pydantic cannot make a schema of fails there);
    # it loads pydantic and msgspec only, which Airflow has loaded already (about 2 ms).
    f"{PACKAGE}.batch.output_spec",
)


@pytest.mark.parametrize(
    "module",
    [
        "operators.batch",
        "operators.cancel",
        "operators.results",
        "sensors.batch",
        "decorators.mistral_batch",
    ],
)
def test_a_dag_file_does_not_load_the_domain_or_the_hook(module: str) -> None:
    # Every DAG file that uses these pays their import at every parse; only a run needs these.
    code = (
        f"import sys, {PACKAGE}.{module}; "
        f"print(sorted(m for m in sys.modules if m.startswith(('{PACKAGE}.batch.', "
        f"'{PACKAGE}.hooks')) and m not in {PARSE_TIME_DOMAIN!r}))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
