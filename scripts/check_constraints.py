"""Check that a constraints file agrees with the dependencies the pyproject files declare.

Run by scripts/_venv.sh before it installs anything, so that a dependency added or tightened in
``pyproject.toml`` without regenerating ``constraints/`` fails with a message naming both,
instead of pip's resolver output or, worse, an install that silently ignores the new bound.

    python scripts/check_constraints.py constraints/airflow-3.3.2-py3.11.txt 3.3.2
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # a bare virtualenv: pip vendors the same library
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]
    from pip._vendor.packaging.version import Version  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
#: The distributions this repository builds; they are installed editable, never pinned.
OWN = {"airflow-provider-mistral-batch", "mistral-batch-emulator"}
#: Where declared dependencies come from: the provider with the extras the scripts install,
#: and the emulator.
SOURCES = (("pyproject.toml", ("dev",)), ("emulator/pyproject.toml", ()))


def read_pins(path: Path) -> dict[str, tuple[Version, int]]:
    """``{canonical name: (version, line number)}`` of every ``name==version`` line."""
    pins: dict[str, tuple[Version, int]] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise SystemExit(f"{path}:{number}: expected name==version, found {raw.strip()!r}")
        pins[canonicalize_name(name.strip())] = (Version(version.strip()), number)
    return pins


def declared(root: Path) -> Iterable[tuple[str, Requirement]]:
    """``(where, requirement)`` for every dependency the pyproject files declare."""
    for relative, extras in SOURCES:
        project = tomllib.loads((root / relative).read_text(encoding="utf-8"))["project"]
        for text in project.get("dependencies", []):
            yield relative, Requirement(text)
        for extra in extras:
            for text in project.get("optional-dependencies", {}).get(extra, []):
                yield f"{relative} [{extra}]", Requirement(text)


def problems(constraints: Path, airflow_version: str, root: Path = ROOT) -> list[str]:
    """Every disagreement between ``constraints`` and the declared dependencies, as sentences."""
    pins = read_pins(constraints)
    found: list[str] = []
    airflow = pins.get("apache-airflow")
    if airflow is None or airflow[0] != Version(airflow_version):
        pinned = "nothing" if airflow is None else f"apache-airflow=={airflow[0]}"
        found.append(f"{constraints} is for apache-airflow=={airflow_version} but pins {pinned}")
    for where, requirement in declared(root):
        name = canonicalize_name(requirement.name)
        if name in OWN or (requirement.marker and not requirement.marker.evaluate()):
            continue
        pin = pins.get(name)
        if pin is None:
            found.append(f"{where} needs {requirement}, which {constraints} does not pin")
        elif not requirement.specifier.contains(pin[0], prereleases=True):
            found.append(
                f"{where} needs {requirement}, but {constraints} line {pin[1]} pins "
                f"{requirement.name}=={pin[0]}"
            )
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    constraints, airflow_version = Path(argv[0]), argv[1]
    if not constraints.is_file():
        print(
            f"error: no constraints file {constraints}; make it with "
            f"scripts/update_constraints.sh {airflow_version}",
            file=sys.stderr,
        )
        return 1
    found = problems(constraints, airflow_version)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    if found:
        print(
            f"Regenerate it with scripts/update_constraints.sh {airflow_version} "
            "(then run scripts/test.sh), or change the pyproject back.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
