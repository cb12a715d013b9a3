"""Backend contract: the same Circe definitions give identical cohort rows on DuckDB and PostgreSQL
(GiBleed copied into a uniquely named PostgreSQL schema for the session)."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest
from atlas_defs import HERE

from follicle.study.atlas.attrition import attrition
from follicle.study.atlas.engine import compile_on
from follicle.study.atlas.model import load_definition

#: every Circe feature of the compiler appears in at least one of these
CONTRACT = ["ohdsi/GIBleed_male.json", "features/gibleed_inclusion_rules.json", "features/nested_groups_counts.json",
            "features/windows_exact_zero.json", "features/domains_mix.json", "features/nsaid_eras_censor_window.json"]


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[["subject_id", "cohort_start_date", "cohort_end_date"]].copy()
    out["subject_id"] = out.subject_id.astype("int64")
    for c in ("cohort_start_date", "cohort_end_date"):
        out[c] = pd.to_datetime(out[c]).dt.strftime("%Y-%m-%d")
    return out.sort_values(list(out.columns)).reset_index(drop=True)


@pytest.mark.postgres
@pytest.mark.parametrize("name", CONTRACT)
def test_identical_rows_and_attrition_on_postgres(name, gibleed_full_db, gibleed_full_pg):
    duck = ibis.duckdb.connect(str(gibleed_full_db), read_only=True)
    pg, schema = gibleed_full_pg
    expr = load_definition(HERE / name)
    with compile_on(expr, duck, materialize=True) as a, compile_on(expr, pg, database=schema, materialize=True) as b:
        expected = _norm(duck.execute(a.cohort))
        assert len(expected) > 0
        pd.testing.assert_frame_equal(_norm(pg.execute(b.cohort)), expected)
        assert attrition(b, pg) == attrition(a, duck)
    assert not [t for t in pg.list_tables() if t.startswith("follicle_atlas_")]  # temporary tables dropped
