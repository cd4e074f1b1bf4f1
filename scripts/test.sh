#!/usr/bin/env bash
# Every check and the tests: ruff (lint + format), mypy (strict on the package), pytest.
# Sets up its own virtualenv on first use. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

echo ">> ruff check"
ruff check .
echo ">> ruff format --check"
ruff format --check .
echo ">> mypy (strict)"
mypy
echo ">> pytest"
python -m pytest "$@"
