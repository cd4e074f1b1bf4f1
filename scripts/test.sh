#!/usr/bin/env bash
# Every check and the tests: ruff (lint + format), mypy (strict on the package), then pytest
# on the newest Airflow and again on the lowest supported one (skip that second run with
# SKIP_LOWEST_AIRFLOW=1). Sets up its own virtualenvs on first use. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

echo ">> ruff check"
ruff check .
echo ">> ruff format --check"
ruff format --check .
echo ">> mypy (strict)"
mypy
# The browser tests drive Chromium from the OS packages (never a downloaded browser build).
if ! command -v chromium >/dev/null 2>&1; then
    echo ">> installing chromium (Debian package) for the browser tests" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
    # apt and debconf talk a lot; show what they said only when the install fails.
    apt_log="$(mktemp)"
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } \
        >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        echo "error: could not install chromium with apt-get (needed by tests/browser)" >&2
        exit 1
    fi
    rm -f "$apt_log"
fi

echo ">> pytest on apache-airflow $AIRFLOW_VERSION"
python -m pytest "$@"

if [ "${SKIP_LOWEST_AIRFLOW:-0}" != "1" ] && [ "$AIRFLOW_VERSION" != "$LOWEST_AIRFLOW" ]; then
    echo ">> pytest on the lowest supported apache-airflow $LOWEST_AIRFLOW"
    env -u VENV AIRFLOW_VERSION="$LOWEST_AIRFLOW" bash -c \
        'source scripts/_venv.sh && python -m pytest "$@"' bash "$@"
fi
