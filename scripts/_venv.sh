# Sourced by demo.sh and test.sh: makes (or reuses) a virtualenv with this project installed:
# the provider and the emulator (emulator/, its own distribution), both editable.
# AIRFLOW_VERSION picks the Airflow release to install (default: the newest tested); each
# version gets its own virtualenv so switching back and forth costs nothing after the first time.
# Every version is decided by constraints/airflow-<version>-py<python>.txt, as Airflow tells its
# users to install; MISTRAL_UNCONSTRAINED=1 installs the newest of everything instead (its own
# virtualenvs, .venv-latest-*), to learn early when a new release breaks the provider.
set -euo pipefail
source scripts/_airflow_versions.sh
AIRFLOW_VERSION="${AIRFLOW_VERSION:-$NEWEST_AIRFLOW}"
UNCONSTRAINED="${MISTRAL_UNCONSTRAINED:-0}"
if [ -z "${VENV:-}" ]; then
    if [ "$UNCONSTRAINED" = 1 ]; then VENV=".venv-latest-airflow-$AIRFLOW_VERSION"
    elif [ "$AIRFLOW_VERSION" = "$NEWEST_AIRFLOW" ]; then VENV=.venv
    else VENV=".venv-airflow-$AIRFLOW_VERSION"; fi
fi

find_python() {
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

# pip on some machines lists extra local package folders that may not exist, and setuptools
# warns about every editable build: noise, not errors. PYTHONWARNINGS reaches the build too.
quiet_pip() {
    PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip --quiet --disable-pip-version-check "$@" 2>&1 |
        { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}

if [ ! -x "$VENV/bin/python" ]; then
    PYTHON_BIN="$(find_python)"
    echo ">> creating virtualenv $VENV with $PYTHON_BIN" >&2
    "$PYTHON_BIN" -m venv "$VENV"
fi

py_tag="$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
CONSTRAINTS="constraints/airflow-$AIRFLOW_VERSION-py$py_tag.txt"
constraint_args=()
if [ "$UNCONSTRAINED" != 1 ]; then
    "$VENV/bin/python" scripts/check_constraints.py "$CONSTRAINTS" "$AIRFLOW_VERSION"
    constraint_args=(-c "$CONSTRAINTS")
fi

stamp="$VENV/.installed-$( (cat pyproject.toml emulator/pyproject.toml; echo "$AIRFLOW_VERSION $UNCONSTRAINED"
    [ "$UNCONSTRAINED" = 1 ] || cat "$CONSTRAINTS") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    if [ "$UNCONSTRAINED" = 1 ]; then how="the newest releases (no constraints)"; else how="$CONSTRAINTS"; fi
    echo ">> installing apache-airflow==$AIRFLOW_VERSION, this provider and its emulator into $VENV with $how (first run takes a minute)" >&2
    # pip and setuptools first, from the same constraints: the editable builds below use this
    # setuptools (no build isolation, which would fetch whatever setuptools is newest).
    quiet_pip install "${constraint_args[@]}" --upgrade pip setuptools
    quiet_pip install "${constraint_args[@]}" --no-build-isolation \
        "apache-airflow==$AIRFLOW_VERSION" -e ".[dev,common-ai]" -e "./emulator"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
