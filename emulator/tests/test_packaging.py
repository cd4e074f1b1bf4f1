"""The emulator is its own distribution, and its server leans on the provider's models only.

Builds both wheels from copies of the source (setuptools, no build isolation, so offline;
about a second each) and checks what is inside: the provider's carries nothing of the
emulator. The copies keep a stale ``build/`` or ``*.egg-info`` of the working tree out of the
wheels, and the builds out of the tree. Then reads the emulator's imports with ``ast``.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EMULATOR_SOURCE = REPO / "emulator" / "mistral_batch_emulator"
PROVIDER = "airflow_provider_mistral_batch"
# What the emulator's server may import from the provider: the wire shapes, nothing else.
PROVIDER_MODELS = f"{PROVIDER}.models"
# The one emulator module that imports Airflow (and may import more of the provider).
DAGTEST = "dagtest.py"

_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".*_cache",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "build",
    "dist",
    ".airflow_home",
)


def _build_wheel(project: Path, out: Path) -> Path:
    result = subprocess.run(  # noqa: S603 (pip of this interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "-w",
            str(out),
            str(project),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"wheel build failed:\n{result.stdout}\n{result.stderr}"
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def provider_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The provider's wheel, built from a copy of the repository root."""
    tmp = tmp_path_factory.mktemp("provider-wheel")
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    with zipfile.ZipFile(_build_wheel(source, tmp / "dist")) as wheel:
        yield wheel


@pytest.fixture(scope="module")
def emulator_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The emulator's wheel, built from a copy of ``emulator/`` (``pip install ./emulator``)."""
    tmp = tmp_path_factory.mktemp("emulator-wheel")
    source = tmp / "src"
    shutil.copytree(REPO / "emulator", source, ignore=_NOT_SOURCE)
    with zipfile.ZipFile(_build_wheel(source, tmp / "dist")) as wheel:
        yield wheel


def _dist_info_file(wheel: zipfile.ZipFile, name: str) -> str:
    """A file of the wheel's ``.dist-info`` folder, or "" when it has none."""
    paths = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(paths[0]).decode() if paths else ""


def test_provider_wheel_holds_the_provider_and_no_emulator(
    provider_wheel: zipfile.ZipFile,
) -> None:
    names = provider_wheel.namelist()
    top_level = {name.split("/")[0] for name in names}
    packages = {top for top in top_level if not top.endswith(".dist-info")}
    assert packages == {PROVIDER}
    assert f"{PROVIDER}/models.py" in names
    assert f"{PROVIDER}/py.typed" in names
    for private in (
        "utils/__init__.py",
        "batch/__init__.py",
        "batch/waiting.py",
        "hooks/http/__init__.py",
        "hooks/http/calls.py",
    ):
        assert f"{PROVIDER}/{private}" in names
    # The UI plugin's pages, style, script and icon are package data, read from the package.
    plugin_files = sorted(
        path.relative_to(REPO).as_posix()
        for folder in ("templates", "static")
        for path in (REPO / PROVIDER / "plugins" / folder).iterdir()
    )
    assert f"{PROVIDER}/plugins/templates/task_tab.html" in plugin_files
    assert f"{PROVIDER}/plugins/static/plugin.js" in plugin_files
    assert [path for path in plugin_files if path not in names] == []
    in_emulator_folder = [
        name for name in names if any("emulator" in folder for folder in name.split("/")[:-1])
    ]
    assert in_emulator_folder == []


def test_provider_wheel_code_never_mentions_the_emulator_or_its_server(
    provider_wheel: zipfile.ZipFile,
) -> None:
    offending = {
        name: word
        for name in provider_wheel.namelist()
        if name.endswith(".py")
        for word in ("uvicorn", "mistral_batch_emulator")
        if word in provider_wheel.read(name).decode()
    }
    assert offending == {}


def test_provider_wheel_entry_points(provider_wheel: zipfile.ZipFile) -> None:
    entry_points = _dist_info_file(provider_wheel, "entry_points.txt")
    assert "[apache_airflow_provider]" in entry_points
    assert f"provider_info = {PROVIDER}.get_provider_info:get_provider_info" in entry_points
    assert "[console_scripts]" not in entry_points
    assert "mistral-batch-emulator" not in entry_points


def test_provider_wheel_has_no_emulator_extra(provider_wheel: zipfile.ZipFile) -> None:
    metadata = _dist_info_file(provider_wheel, "METADATA")
    assert "Provides-Extra: emulator" not in metadata
    assert not any(line.startswith("Requires-Dist: uvicorn") for line in metadata.splitlines())


def test_emulator_wheel_holds_the_emulator_its_script_and_no_provider(
    emulator_wheel: zipfile.ZipFile,
) -> None:
    names = emulator_wheel.namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {top for top in top_level if not top.endswith(".dist-info")} == {
        "mistral_batch_emulator"
    }
    for module in ("__init__.py", "cli.py", DAGTEST, "py.typed"):
        assert f"mistral_batch_emulator/{module}" in names
    entry_points = _dist_info_file(emulator_wheel, "entry_points.txt")
    assert "mistral-batch-emulator = mistral_batch_emulator.cli:main" in entry_points
    assert "apache_airflow_provider" not in entry_points
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in _dist_info_file(emulator_wheel, "METADATA").splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    assert "airflow-provider-mistral-batch" in requires


def _imports(path: Path) -> set[str]:
    """What a module imports, as dotted names: ``from a.b import c`` gives ``a.b.c``.

    Relative imports are resolved against the module's package.
    """
    package = ".".join(path.relative_to(EMULATOR_SOURCE.parent).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{module}" if module else base
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(f"{module}.")


def _server_modules() -> list[Path]:
    modules = sorted(p for p in EMULATOR_SOURCE.rglob("*.py") if p.name != DAGTEST)
    assert len(modules) > 10, f"found no emulator modules in {EMULATOR_SOURCE}"
    return modules


def _server_imports(forbidden: Callable[[str], bool]) -> dict[str, list[str]]:
    """Per server module, the imported names ``forbidden`` says it must not import."""
    return {
        path.name: bad
        for path in _server_modules()
        if (bad := sorted(name for name in _imports(path) if forbidden(name)))
    }


def test_emulator_server_imports_only_the_provider_models() -> None:
    """DESIGN: the emulator imports the provider's ``models`` at most."""
    offending = _server_imports(
        lambda name: _within(name, PROVIDER) and not _within(name, PROVIDER_MODELS)
    )
    assert offending == {}


def test_emulator_server_imports_neither_airflow_nor_dagtest() -> None:
    """``dagtest`` is the one emulator module that imports Airflow; the server never uses it."""
    offending = _server_imports(
        lambda name: _within(name, "airflow") or _within(name, "mistral_batch_emulator.dagtest")
    )
    assert offending == {}


def test_dagtest_default_connection_id_is_the_hooks() -> None:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from mistral_batch_emulator import dagtest

    assert MistralBatchHook.default_conn_name == dagtest.DEFAULT_CONN_ID
