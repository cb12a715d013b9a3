#!/usr/bin/env bash
# The README's main-job command: a virtual environment with pinned dependencies, then the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e .
exec .venv/bin/follicle demo "$@"
