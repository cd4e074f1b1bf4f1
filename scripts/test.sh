#!/usr/bin/env bash
# Every check and the tests: ruff (lint + format), mypy (strict on the package), then pytest
# on the newest Airflow and on the lowest supported one at the same time, each in its own
# virtualenv (skip the second with SKIP_LOWEST_AIRFLOW=1). Sets up its own virtualenvs on first
# use. Extra arguments go to both pytest runs.
#
# The two pytest runs share the machine: the newest's output streams as it comes, the lowest's
# is kept and printed after it. Their deployment and browser tests (timing-sensitive: a real
# Airflow, Chromium) never overlap: a deployment waits for the other run's to end
# (MISTRAL_DEPLOYMENT_LOCK, tests/system/deployment/harness.py), and the lowest's run takes them last
# (MISTRAL_DEPLOYMENTS_LAST, the root conftest.py) while the newest's takes them first, so that
# neither waits in practice.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_airflow_versions.sh

run_lowest=0
if [ "${SKIP_LOWEST_AIRFLOW:-0}" != "1" ] && [ "${AIRFLOW_VERSION:-$NEWEST_AIRFLOW}" != "$LOWEST_AIRFLOW" ]; then
    run_lowest=1
fi
work="$(mktemp -d)"
lowest_pid=""
# The background job runs in its own process group (set -m): Ctrl-C or a failure here stops
# it with SIGINT, so that its pytest tears down what it started (deployments, emulators).
stop_lowest() {
    if [ -n "$lowest_pid" ] && kill -0 "$lowest_pid" 2>/dev/null; then
        kill -INT -- "-$lowest_pid" 2>/dev/null || true
        wait "$lowest_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop_lowest EXIT
trap 'exit 130' INT TERM
# Runs "$@" for the lowest Airflow, in its own process group, output to $work/lowest.log.
start_lowest() {
    set -m
    env -u VENV AIRFLOW_VERSION="$LOWEST_AIRFLOW" bash -c "$1" bash "${@:2}" >"$work/lowest.log" 2>&1 &
    lowest_pid=$!
    set +m
}
# Waits for the background job; its exit status. Prints its output first.
finish_lowest() {
    local status=0
    wait "$lowest_pid" || status=$?
    lowest_pid=""
    cat "$work/lowest.log"
    return "$status"
}

# Both virtualenvs at once on first use (each install waits on downloads and disk as much as
# on the CPU), the lowest's in the background while the checks below run; later runs find
# them made and only check the constraints.
if [ "$run_lowest" = 1 ]; then
    start_lowest 'source scripts/_venv.sh'
fi
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
        echo "error: could not install chromium with apt-get (needed by tests/system/browser)" >&2
        exit 1
    fi
    rm -f "$apt_log"
fi

export MISTRAL_DEPLOYMENT_LOCK="$work/deployment.lock"
if [ "$run_lowest" = 1 ]; then
    echo ">> virtualenv for the lowest supported apache-airflow $LOWEST_AIRFLOW"
    finish_lowest
    MISTRAL_DEPLOYMENTS_LAST=1 start_lowest \
        'source scripts/_venv.sh && exec python -m pytest "$@"' "$@"
fi
echo ">> pytest on apache-airflow $AIRFLOW_VERSION"
newest_status=0
python -m pytest "$@" || newest_status=$?

lowest_status=0
if [ "$run_lowest" = 1 ]; then
    echo ">> pytest on the lowest supported apache-airflow $LOWEST_AIRFLOW (run alongside; its output follows when it ends)"
    finish_lowest || lowest_status=$?
fi
if [ "$newest_status" != 0 ] || [ "$lowest_status" != 0 ]; then
    [ "$newest_status" = 0 ] || echo ">> pytest on apache-airflow $AIRFLOW_VERSION FAILED (exit $newest_status)" >&2
    [ "$lowest_status" = 0 ] || echo ">> pytest on apache-airflow $LOWEST_AIRFLOW FAILED (exit $lowest_status)" >&2
    exit 1
fi
