#!/usr/bin/env bash
# Regenerates constraints/airflow-<version>-py<python>.txt: resolves Airflow, the provider with its
# dev tools and the emulator in a throwaway virtualenv and pins every distribution it installed.
# Airflow tells its users to install with a constraints file; the official ones cannot be
# downloaded everywhere, so this repo keeps its own, made here from a resolved install.
#
#   scripts/update_constraints.sh              # both tested Airflow versions
#   scripts/update_constraints.sh 3.3.2        # one
#
# constraints/holds-<version>.txt, when present, holds upper bounds (with their reasons) that the
# resolve must respect: a release known to break that Airflow version.
# Run scripts/test.sh afterwards: a new pin is only as good as the tests that passed on it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_airflow_versions.sh

PYTHON_BIN="${PYTHON:-python3.11}"
py_tag="$("$PYTHON_BIN" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
versions=("$@")
[ "${#versions[@]}" -gt 0 ] || versions=("$NEWEST_AIRFLOW" "$LOWEST_AIRFLOW")

for version in "${versions[@]}"; do
    out="constraints/airflow-$version-py$py_tag.txt"
    venv="$(mktemp -d)/venv"
    echo ">> resolving apache-airflow==$version on Python $py_tag in $venv" >&2
    "$PYTHON_BIN" -m venv "$venv"
    holds=()
    if [ -f "constraints/holds-$version.txt" ]; then holds=(-c "constraints/holds-$version.txt"); fi
    PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade pip setuptools 2>&1 | { grep -v "is ignored: it is neither" || true; }
    PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "${holds[@]}" "apache-airflow==$version" -e ".[dev,common-ai]" -e ./emulator \
        2>&1 | { grep -v "is ignored: it is neither" || true; }
    "$venv/bin/python" -m pip check
    {
        echo "# Constraints for apache-airflow==$version on Python $py_tag, made by"
        echo "# scripts/update_constraints.sh on $(date -u +%Y-%m-%d) from a resolved install of Airflow,"
        echo "# the provider with its dev and common-ai extras and the emulator. Install with:"
        echo "#   pip install -c $out \"apache-airflow==$version\" airflow-provider-mistral-batch"
        # --all keeps pip and setuptools (the editable builds use them); the project's own
        # distributions (editable, "-e" lines) are left out.
        "$venv/bin/python" -m pip freeze --all --exclude-editable --disable-pip-version-check \
            | grep -v -i -E '^(airflow-provider-mistral-batch|mistral-batch-emulator)( |=|@)' \
            | LC_ALL=C sort -f
    } >"$out"
    rm -rf "$(dirname "$venv")"
    echo ">> wrote $out ($(grep -c -v '^#' "$out") pins)" >&2
done
