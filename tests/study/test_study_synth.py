"""The bundled JAKi study on the synthetic AA world: cohort sizes, exclusions and outcome counts
equal an independent plain-pandas computation from the raw tables (tests/study/pandas_reference.py)."""

from __future__ import annotations

from pathlib import Path

import ibis
import pytest
from pandas_reference import Reference

from follicle.study.population import StudySession, build_population
from follicle.study.spec import load_spec

synth = pytest.importorskip("follicle.synth")
if not hasattr(synth, "simulate"):
    pytest.skip("the synthetic world (follicle.synth.simulate) is not on this branch yet", allow_module_level=True)

SPEC = load_spec(Path(__file__).parents[2] / "studies" / "jaki_neuropsych.yaml")
PERSONS = 20_000
RAW = ("person", "observation_period", "drug_exposure", "condition_occurrence", "death", "concept", "concept_ancestor")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from follicle.cdm.write import write_cdm

    tables = synth.simulate(synth.WorldConfig(), persons=PERSONS, seed=7).to_cdm()
    path = tmp_path_factory.mktemp("synth") / "world.duckdb"
    write_cdm(tables, path)
    return path, {t: tables[t].to_pandas() for t in RAW}


@pytest.fixture(scope="module")
def engine(world):
    con = ibis.duckdb.connect(str(world[0]), read_only=True)
    with StudySession(SPEC, con) as s:
        assert s.warnings == []  # every code of the study resolves in the bundled vocabulary
        return {c: build_population(SPEC, con, c, session=s) for c in SPEC.comparisons}


@pytest.fixture(scope="module")
def reference(world):
    return Reference(world[1], SPEC)


@pytest.mark.parametrize("cohort", sorted(SPEC.cohorts))
def test_cohort_attrition_equals_pandas(engine, reference, cohort):
    _, counts = reference.cohort(cohort)
    rows = [p.attrition[p.attrition.cohort == cohort] for p in engine.values()]
    got = next(r for r in rows if len(r)).sort_values("step_index")
    assert got.persons.tolist() == counts
    steps = got.set_index("step").persons
    assert steps["exclude_0"] < steps["require_0"]  # the psychiatric/sleep exclusion removes people
    assert counts[-1] >= 100


@pytest.mark.parametrize("comparison", sorted(SPEC.comparisons))
def test_population_and_outcomes_equal_pandas(engine, reference, comparison):
    got = engine[comparison].table.set_index("person_id")
    ref = reference.population(comparison)
    assert list(got.index) == list(ref.index)
    assert (got.treatment == ref.treatment).all() and (got.index_date == ref.index_date).all()
    for col in [c for c in ref.columns if c.startswith("cov_") or c.endswith(("_event", "_days", "_prior"))] + ["followup_days"]:
        assert (got[col].to_numpy() == ref[col].to_numpy()).all(), col
    events = got[[f"{o}_event" for o in SPEC.comparisons[comparison].outcomes]].sum()
    assert (events > 0).all()  # every neuropsychiatric outcome occurs
