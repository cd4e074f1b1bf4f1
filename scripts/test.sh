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
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

echo ">> pytest on apache-airflow $AIRFLOW_VERSION"
python -m pytest "$@"

if [ "${SKIP_LOWEST_AIRFLOW:-0}" != "1" ] && [ "$AIRFLOW_VERSION" != "$LOWEST_AIRFLOW" ]; then
    echo ">> pytest on the lowest supported apache-airflow $LOWEST_AIRFLOW"
    env -u VENV AIRFLOW_VERSION="$LOWEST_AIRFLOW" bash -c \
        'source scripts/_venv.sh && python -m pytest "$@"' bash "$@"
fi
