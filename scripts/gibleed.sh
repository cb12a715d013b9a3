#!/usr/bin/env bash
# Real-data example: install, load the OHDSI GiBleed sample CDM from ../shared/data/omop/gibleed
# (read in place, never copied into the repo), check and summarise it, then run the Book of OHDSI's
# celecoxib vs diclofenac study (studies/gibleed_celecoxib_diclofenac.yaml: crude, 1:1 matching,
# 5 PS strata, IPTW). Results beside the published figures: docs/gibleed.md.
# Set FOLLICLE_SHARED to use another shared folder, FOLLICLE_DB another target (e.g. a postgresql://
# URL), FOLLICLE_OUT another output folder. Defaults: follicle-demo/gibleed.duckdb and
# follicle-demo/gibleed/ (results.json, tables/, report.html).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${FOLLICLE_SHARED:-$(cd .. && pwd)/shared}"
DB="${FOLLICLE_DB:-follicle-demo/gibleed.duckdb}"
OUT="${FOLLICLE_OUT:-follicle-demo/gibleed}"
FOLLICLE="${FOLLICLE_BIN:-.venv/bin/follicle}"
if [ ! -d "$SHARED/data/omop/gibleed" ]; then
  echo "error: GiBleed not found at $SHARED/data/omop/gibleed (set FOLLICLE_SHARED to the shared folder)" >&2
  exit 2
fi
if [ ! -x "$FOLLICLE" ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e .
  FOLLICLE=.venv/bin/follicle
fi
case "$DB" in postgres*) ;; *) mkdir -p "$(dirname "$DB")" ;; esac
"$FOLLICLE" cdm load "$SHARED/data/omop/gibleed" --db "$DB" --overwrite
"$FOLLICLE" cdm check --db "$DB"
"$FOLLICLE" cdm summary --db "$DB"
"$FOLLICLE" run studies/gibleed_celecoxib_diclofenac.yaml --db "$DB" --out "$OUT"
echo "published figures beside these: docs/gibleed.md"
