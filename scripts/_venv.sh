# Sourced by demo.sh and test.sh: makes (or reuses) a virtualenv with this project installed:
# the provider and the emulator (emulator/, its own distribution), both editable.
# AIRFLOW_VERSION picks the Airflow release to install (default below); each version gets its
# own virtualenv so switching back and forth costs nothing after the first time.
set -euo pipefail

# The newest Airflow this provider is tested on, and the lowest it supports.
NEWEST_AIRFLOW=3.3.2
LOWEST_AIRFLOW=3.1.8
AIRFLOW_VERSION="${AIRFLOW_VERSION:-$NEWEST_AIRFLOW}"
if [ -z "${VENV:-}" ]; then
    if [ "$AIRFLOW_VERSION" = "$NEWEST_AIRFLOW" ]; then VENV=.venv; else VENV=".venv-airflow-$AIRFLOW_VERSION"; fi
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

# pip on some machines lists extra local package folders that may not exist; its warnings
# about them are noise, not errors.
quiet_pip() {
    "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}

if [ ! -x "$VENV/bin/python" ]; then
    PYTHON_BIN="$(find_python)"
    echo ">> creating virtualenv $VENV with $PYTHON_BIN" >&2
    "$PYTHON_BIN" -m venv "$VENV"
fi

stamp="$VENV/.installed-$( (cat pyproject.toml emulator/pyproject.toml; echo "$AIRFLOW_VERSION") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo ">> installing apache-airflow==$AIRFLOW_VERSION, this provider and its emulator into $VENV (first run takes a minute)" >&2
    quiet_pip install --quiet --disable-pip-version-check --upgrade pip
    quiet_pip install --quiet --disable-pip-version-check "apache-airflow==$AIRFLOW_VERSION" -e ".[dev]" -e "./emulator"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
