"""common-ai stays optional: the provider never imports it, and imports without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "airflow_provider_mistral_batch"
#: What a worker or a DAG file loads of the provider.
MODULES = (
    PACKAGE,
    f"{PACKAGE}.get_provider_info",
    f"{PACKAGE}.common_ai",
    f"{PACKAGE}.hooks.mistral_batch",
    f"{PACKAGE}.operators.batch",
    f"{PACKAGE}.operators.cancel",
    f"{PACKAGE}.operators.results",
    f"{PACKAGE}.sensors.batch",
    f"{PACKAGE}.triggers.batch",
    f"{PACKAGE}.decorators.mistral_batch",
)
#: Airflow's own provider discovery imports these of every installed provider, when its
#: configuration starts: this much of common-ai comes with any Airflow import.
AIRFLOW_DISCOVERY = ("airflow.providers.common.ai", "airflow.providers.common.ai.get_provider_info")
#: Makes the rest of common-ai unimportable, as when the extra is not installed (a blocked
#: discovery import would fail Airflow itself, which a missing distribution never does).
BLOCK = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("airflow.providers.common.ai.") and name not in {AIRFLOW_DISCOVERY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> str:
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_the_provider_does_not_import_common_ai() -> None:
    # Nothing of common-ai beyond what Airflow's discovery loads: none of its batch machinery.
    code = (
        f"import importlib, sys\nfor m in {MODULES!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.startswith('airflow.providers.common.ai')"
        f" and m not in {AIRFLOW_DISCOVERY!r}))"
    )
    assert _run(code) == "[]"


def test_the_provider_imports_without_common_ai() -> None:
    code = (
        BLOCK
        + f"import importlib\nfor m in {MODULES!r}: importlib.import_module(m)\n"
        + f"from {PACKAGE}.get_provider_info import get_provider_info\n"
        + "get_provider_info()\n"
        + "try:\n"
        + f"    import {PACKAGE}.common_ai.adapter\n"
        + "except ModuleNotFoundError as exc:\n"
        + "    print('adapter needs common-ai:', exc.name)\n"
    )
    # The blocker proves itself: the adapter, and only it, needs common-ai.
    assert _run(code) == "adapter needs common-ai: airflow.providers.common.ai.batch"


@pytest.mark.parametrize("module", MODULES)
def test_the_module_list_is_real(module: str) -> None:
    path = ROOT / Path(*module.split("."))
    assert path.with_suffix(".py").exists() or (path / "__init__.py").exists()
