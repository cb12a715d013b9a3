#!/usr/bin/env bash
# The README's test command: a virtual environment with pinned dependencies, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# the spark extra (PySpark) too: the backend contract suite runs on local Spark when Java is installed
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,spark]"
# test-only oracle of the ATLAS tests (OHDSI's Circe SQL); --no-deps: it pins an older sqlglot than Ibis 12
.venv/bin/python -m pip install -q --no-deps ohdsi-circepy==0.3.0
exec .venv/bin/python -m pytest "$@"
