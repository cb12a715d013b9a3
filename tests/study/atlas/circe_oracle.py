"""Test-only oracle: the SQL that OHDSI's own Circe code writes for a definition, run on DuckDB.

``ohdsi-circepy`` (PyPI, Apache-2.0, by OHDSI) is a Python port of circe-be's query builder and of
SqlRender. Its SQL for a definition is translated to DuckDB and run on a copy of the CDM; the
cohort rows and the inclusion-rule masks (``cohort_inclusion_result``) are read back. It is a
cross-check only (see docs/atlas.md for why it is not a dependency).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

RESULT_TABLES = (
    "cohort (cohort_definition_id bigint, subject_id bigint, cohort_start_date date, cohort_end_date date)",
    "cohort_inclusion_result (cohort_definition_id bigint, inclusion_rule_mask bigint, person_count bigint, mode_id int)",
    "cohort_inclusion_stats (cohort_definition_id bigint, rule_sequence int, person_count bigint, gain_count bigint, "
    "person_total bigint, mode_id int)",
    "cohort_summary_stats (cohort_definition_id bigint, base_count bigint, final_count bigint, mode_id int)",
    "cohort_censor_stats (cohort_definition_id bigint, lost_count bigint)",
)


def legacy(definition: dict[str, Any]) -> dict[str, Any]:
    """circepy 0.3.0 reads only the pre-1.11 spelling of era pad and end-strategy offsets."""
    d = json.loads(json.dumps(definition))
    cs = d.get("CollapseSettings") or {}
    if "EraPadUnitValue" in cs:
        d["CollapseSettings"] = {"CollapseType": "ERA", "EraPad": cs["EraPadUnitValue"]}
    es = d.get("EndStrategy") or {}
    if "DateOffset" in es and "OffsetUnitValue" in es["DateOffset"]:
        es["DateOffset"] = {"DateField": es["DateOffset"].get("DateField", "StartDate"),
                            "Offset": es["DateOffset"]["OffsetUnitValue"]}
    if "CustomEra" in es:
        ce = es["CustomEra"]
        es["CustomEra"] = {k: v for k, v in {"DrugCodesetId": ce.get("DrugCodesetId"),
                                              "GapDays": ce.get("GapDays", ce.get("GapUnitValue", 0)),
                                              "Offset": ce.get("Offset", ce.get("OffsetUnitValue", 0)),
                                              "DaysSupplyOverride": ce.get("DaysSupplyOverride")}.items() if v is not None}
    return d


def circe_rows(db: Path, definition: dict[str, Any], work: Path) -> tuple[pd.DataFrame, dict[tuple[int, int], int]]:
    """Cohort rows and ``{(mode, mask): count}`` from circepy's SQL run on a copy of *db*."""
    from circe.api import build_cohort_query, cohort_expression_from_json
    from circe.cohortdefinition import BuildExpressionQueryOptions
    from circe.sqlrender import render, split_sql, translate

    expr = cohort_expression_from_json(json.dumps(legacy(definition)))
    options = BuildExpressionQueryOptions()
    options.cdm_schema = options.vocabulary_schema = options.result_schema = "main"
    options.cohort_id = 1
    options.target_table = "main.cohort"
    options.generate_stats = True
    sql = render(build_cohort_query(expr, options), cdm_database_schema="main", vocabulary_database_schema="main",
                 target_database_schema="main", results_database_schema="main", target_cohort_table="cohort",
                 target_cohort_id=1)
    copy = work / f"oracle-{db.stem}.duckdb"
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy))
    try:
        for table in RESULT_TABLES:
            con.execute(f"CREATE OR REPLACE TABLE {table}")
        for stmt in split_sql(translate(sql, "duckdb")):
            if stmt.strip():
                con.execute(stmt)
        rows = con.execute("SELECT subject_id, cohort_start_date, cohort_end_date FROM cohort").df()
        masks = {(int(m), int(k)): int(n) for k, n, m in
                 con.execute("SELECT inclusion_rule_mask, person_count, mode_id FROM cohort_inclusion_result").fetchall()}
    finally:
        con.close()
        copy.unlink(missing_ok=True)
    return rows, masks
