#!/usr/bin/env bash
# Real-data example: install, then load the OHDSI GiBleed sample CDM
# from ../shared/data/omop/gibleed (read in place, never copied into the repo), check it and
# summarise it. Set FOLLICLE_SHARED to use another shared folder, FOLLICLE_DB another target
# (e.g. a postgresql:// URL). Output database: follicle-demo/gibleed.duckdb.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${FOLLICLE_SHARED:-$(cd .. && pwd)/shared}"
DB="${FOLLICLE_DB:-follicle-demo/gibleed.duckdb}"
if [ ! -d "$SHARED/data/omop/gibleed" ]; then
  echo "error: GiBleed not found at $SHARED/data/omop/gibleed (set FOLLICLE_SHARED to the shared folder)" >&2
  exit 2
fi
if [ ! -x .venv/bin/follicle ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e .
fi
mkdir -p follicle-demo
.venv/bin/follicle cdm load "$SHARED/data/omop/gibleed" --db "$DB" --overwrite
.venv/bin/follicle cdm check --db "$DB"
.venv/bin/follicle cdm summary --db "$DB"
