#!/usr/bin/env bash
# The main job, end to end against the local Mistral emulator: upload a JSONL, create a batch
# job, wait for it, download its output and print a few results.
# Sets up its own virtualenv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

python scripts/demo.py "$@"
