"""The engine against an independent plain-pandas computation from the raw GiBleed CSVs
(tests/study/pandas_reference.py), on a spec that uses every cohort feature."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pytest
from pandas_reference import Reference

from follicle.study.population import StudySession, build_population
from follicle.study.spec import load_spec

SPEC = load_spec(Path(__file__).with_name("contract_spec.yaml"))
RAW = ("person", "observation_period", "drug_exposure", "condition_occurrence", "death", "concept", "concept_ancestor")


@pytest.fixture(scope="module")
def reference(gibleed_dir):
    return Reference({t: pd.read_csv(gibleed_dir / f"{t}.csv", low_memory=False) for t in RAW}, SPEC)


@pytest.fixture(scope="module")
def engine(gibleed_db):
    con = ibis.duckdb.connect(str(gibleed_db), read_only=True)
    with StudySession(SPEC, con) as s:
        return {c: build_population(SPEC, con, c, session=s) for c in SPEC.comparisons}


@pytest.mark.parametrize("cohort", sorted(SPEC.cohorts))
def test_attrition_equals_pandas(engine, reference, cohort):
    _, counts = reference.cohort(cohort)
    att = pd.concat([p.attrition for p in engine.values()])
    got = att[att.cohort == cohort].drop_duplicates("step_index").sort_values("step_index").persons.tolist()
    assert got == counts
    assert counts[-1] > 0


@pytest.mark.parametrize("comparison", sorted(SPEC.comparisons))
def test_analysis_table_equals_pandas(engine, reference, comparison):
    got = engine[comparison].table.set_index("person_id")
    ref = reference.population(comparison)
    assert list(got.index) == list(ref.index)
    assert (got.treatment == ref.treatment).all()
    assert (got.index_date == ref.index_date).all()
    assert (got.age == ref.age).all()
    cols = ["followup_days"] + [c for c in ref.columns if c.startswith("cov_") or c.endswith(("_event", "_days", "_prior"))]
    for col in cols:
        assert (got[col].to_numpy() == ref[col].to_numpy()).all(), col
    # the spec exercises prior-outcome flags and events
    assert got.filter(like="_prior").to_numpy().sum() > 0
    assert got.filter(like="_event").to_numpy().sum() > 0
