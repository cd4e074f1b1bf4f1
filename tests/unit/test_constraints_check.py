"""scripts/check_constraints.py: the pyproject files and a constraints file must agree."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_constraints.py"


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_constraints", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = load_checker()


def make_repo(
    tmp_path: Path, provider_deps: list[str], dev: list[str], emulator: list[str]
) -> Path:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    (tmp_path / "emulator").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        "[project]\n"
        f"dependencies = {toml_list(provider_deps)}\n"
        "[project.optional-dependencies]\n"
        f"dev = {toml_list(dev)}\n"
    )
    (tmp_path / "emulator" / "pyproject.toml").write_text(
        f"[project]\ndependencies = {toml_list(emulator)}\n"
    )
    return tmp_path


def write_constraints(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "constraints.txt"
    path.write_text("# header\n" + "\n".join(lines) + "\n")
    return path


def test_agreeing_files_have_no_problems(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        ["apache-airflow>=3.1", "httpx2>=2.9"],
        ["pytest>=8"],
        ["airflow-provider-mistral-batch", "fastapi>=0.110"],
    )
    constraints = write_constraints(
        tmp_path, "apache-airflow==3.3.2", "httpx2==2.17.0", "pytest==9.0.1", "fastapi==0.136.3"
    )
    assert checker.problems(constraints, "3.3.2", root=repo) == []


def test_a_tightened_dependency_names_both_files_and_the_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["apache-airflow>=3.1", "httpx2>=3"], [], [])
    constraints = write_constraints(tmp_path, "apache-airflow==3.3.2", "httpx2==2.17.0")
    assert checker.problems(constraints, "3.3.2", root=repo) == [
        f"pyproject.toml needs httpx2>=3, but {constraints} line 3 pins httpx2==2.17.0"
    ]


def test_a_new_dependency_that_is_not_pinned_is_named(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["apache-airflow>=3.1"], ["hypothesis>=6"], ["uvicorn>=0.29"])
    constraints = write_constraints(tmp_path, "apache-airflow==3.3.2", "uvicorn==0.40.0")
    assert checker.problems(constraints, "3.3.2", root=repo) == [
        f"pyproject.toml [dev] needs hypothesis>=6, which {constraints} does not pin"
    ]


def test_a_file_made_for_another_airflow_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["apache-airflow>=3.1"], [], [])
    constraints = write_constraints(tmp_path, "apache-airflow==3.1.8")
    assert checker.problems(constraints, "3.3.2", root=repo) == [
        f"{constraints} is for apache-airflow==3.3.2 but pins apache-airflow==3.1.8"
    ]


def test_a_line_that_is_not_a_pin_is_refused_with_its_number(tmp_path: Path) -> None:
    constraints = write_constraints(tmp_path, "apache-airflow==3.3.2", "httpx2>=2")
    with pytest.raises(SystemExit, match=r"constraints.txt:3: expected name==version"):
        checker.read_pins(constraints)


@pytest.mark.parametrize("path", sorted((ROOT / "constraints").glob("airflow-*-py*.txt")))
def test_the_committed_constraints_agree_with_the_pyprojects(path: Path) -> None:
    airflow_version = path.name.removeprefix("airflow-").rsplit("-py", 1)[0]
    assert checker.problems(path, airflow_version) == []


def test_the_command_fails_with_the_message_a_user_sees(tmp_path: Path) -> None:
    missing = tmp_path / "airflow-9.9.9-py3.11.txt"
    result = subprocess.run(  # noqa: S603 (this interpreter, this repo's script)
        [sys.executable, str(SCRIPT), str(missing), "9.9.9"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: no constraints file {missing}; make it with scripts/update_constraints.sh 9.9.9\n"
    )
