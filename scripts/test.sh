#!/usr/bin/env bash
# The README's test command: a virtual environment with pinned dependencies, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
exec .venv/bin/python -m pytest "$@"
