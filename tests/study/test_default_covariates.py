"""The default covariate set (FeatureExtraction-like), computed in the database, against an
independent pandas computation from GiBleed's CSV files, and on PostgreSQL as on DuckDB.

Rules checked (follicle.study.covariates): sex, 5-year age group and index year; each condition,
procedure and measurement starting in days -365..0 (and -30..0) of index; each drug exposure
overlapping those windows, rolled up to its ingredients through concept_ancestor; concept 0 and the
compared drugs (celecoxib, diclofenac and every descendant) left out before and after the roll-up.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from follicle.run.pipeline import design_matrix
from follicle.study.population import StudySession, build_population
from follicle.study.spec import load_spec, parse_spec

STUDY = Path(__file__).resolve().parents[2] / "studies" / "gibleed_celecoxib_diclofenac.yaml"
COMPARISON = "celecoxib_vs_diclofenac"


def _spec(**default_set):
    data = load_spec(STUDY).model_dump(mode="json")
    data["covariates"]["default_set"] |= default_set
    data["comparisons"][COMPARISON]["negative_controls"] = []
    return parse_spec(data)


@pytest.fixture(scope="module")
def population(gibleed_db):
    con = ibis.duckdb.connect(str(gibleed_db), read_only=True)
    return build_population(_spec(), con, COMPARISON, outcomes=[])


def _csv(folder: Path, name: str, cols: list[str]) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", usecols=cols)


def expected_pairs(folder: Path, people: pd.DataFrame, excluded: set[int]) -> set[tuple[int, int]]:
    """(person_id, covariate_id) of the default set, from the CSVs with pandas."""
    idx = people.set_index("person_id")["index_date"]
    out: set[tuple[int, int]] = set()

    def add(frame: pd.DataFrame, concept: str, start: str, end: str | None, ids: tuple[int, int]) -> None:
        f = frame[frame.person_id.isin(idx.index)].copy()
        f["first"] = (pd.to_datetime(f[start]) - f.person_id.map(idx)).dt.days
        f["last"] = (pd.to_datetime(f[end].fillna(f[start])) - f.person_id.map(idx)).dt.days if end else f["first"]
        f = f[(f["first"] <= 0) & (f["last"] >= -365) & (f[concept] != 0) & f[concept].notna()]
        f = f[~f[concept].isin(excluded)]
        for (p, c), last in f.groupby(["person_id", concept])["last"].max().items():
            out.add((int(p), int(c) * 1000 + ids[0]))
            if last >= -30:
                out.add((int(p), int(c) * 1000 + ids[1]))

    add(_csv(folder, "condition_occurrence", ["person_id", "condition_concept_id", "condition_start_date"]),
        "condition_concept_id", "condition_start_date", None, (102, 104))
    add(_csv(folder, "procedure_occurrence", ["person_id", "procedure_concept_id", "procedure_date"]),
        "procedure_concept_id", "procedure_date", None, (502, 504))
    add(_csv(folder, "measurement", ["person_id", "measurement_concept_id", "measurement_date"]),
        "measurement_concept_id", "measurement_date", None, (702, 704))
    drugs = _csv(folder, "drug_exposure", ["person_id", "drug_concept_id", "drug_exposure_start_date",
                                           "drug_exposure_end_date"])
    drugs = drugs[~drugs.drug_concept_id.isin(excluded)]
    anc = _csv(folder, "concept_ancestor", ["ancestor_concept_id", "descendant_concept_id"])
    concept = _csv(folder, "concept", ["concept_id", "concept_class_id"])
    ingredients = set(concept.loc[concept.concept_class_id == "Ingredient", "concept_id"])
    anc = anc[anc.ancestor_concept_id.isin(ingredients)]
    rolled = drugs.merge(anc, left_on="drug_concept_id", right_on="descendant_concept_id", how="left")
    rolled["drug_concept_id"] = rolled.ancestor_concept_id.fillna(rolled.drug_concept_id).astype(int)
    add(rolled, "drug_concept_id", "drug_exposure_start_date", "drug_exposure_end_date", (402, 404))
    person = _csv(folder, "person", ["person_id", "gender_concept_id", "year_of_birth"]).set_index("person_id")
    for p, day in idx.items():
        year = pd.Timestamp(day).year
        out.add((int(p), int(person.loc[p, "gender_concept_id"]) * 1000 + 1))
        out.add((int(p), (year - int(person.loc[p, "year_of_birth"])) // 5 * 1000 + 3))
        out.add((int(p), year * 1000 + 6))
    return out


def test_default_set_equals_an_independent_pandas_computation(population, gibleed_dir):
    anc = _csv(gibleed_dir, "concept_ancestor", ["ancestor_concept_id", "descendant_concept_id"])
    excluded = set(anc.loc[anc.ancestor_concept_id.isin([1118084, 1124300]), "descendant_concept_id"]) | {1118084, 1124300}
    people = population.table[["person_id", "index_date"]]
    want = expected_pairs(gibleed_dir, people, excluded)
    sp = population.sparse_covariates
    got = set(zip(sp.person_id.tolist(), sp.covariate_id.tolist()))
    assert len(sp) == len(got)  # no duplicate rows
    assert got == want, (sorted(got - want)[:5], sorted(want - got)[:5])
    assert len(want) > 15_000  # some 17,600 person x covariate rows


def test_the_compared_drugs_are_never_covariates(population):
    ref = population.covariate_ref
    assert not set(ref.concept_id) & {1118084, 1124300}
    assert {"condition", "drug ingredient", "procedure", "measurement", "demographics"} <= set(ref.analysis)
    assert ref.covariate_name.str.len().min() > 5 and ref.covariate_id.is_unique
    named = ref.set_index("covariate_id").covariate_name
    assert named[80180 * 1000 + 102] == "condition day -365 to 0: Osteoarthritis"
    assert named[8532 * 1000 + 1].startswith("sex: ")


def test_design_matrix_is_sparse_and_drops_constant_columns(population):
    X, names = design_matrix(population)
    assert X.format == "csr" and X.shape[0] == len(population.table) and len(names) == X.shape[1]
    assert names[:2] == ["age", "female"]  # the dense demographics first, then the sparse default set
    counts = np.asarray((X[:, 2:] != 0).sum(axis=0)).ravel()
    assert (counts > 0).all() and (counts < X.shape[0]).all()  # osteoarthritis (everyone) is gone
    assert "condition day -365 to 0: Osteoarthritis" not in names


def test_excluded_concept_sets_and_domains(gibleed_db):
    data = _spec(domains=["condition", "drug"]).model_dump(mode="json")
    data["concept_sets"]["acetaminophen"] = {"include": ["RxNorm:acetaminophen"]}
    data["covariates"]["default_set"]["excluded_concept_sets"] = ["acetaminophen"]
    data["covariates"]["default_set"]["demographics"] = False
    con = ibis.duckdb.connect(str(gibleed_db), read_only=True)
    pop = build_population(parse_spec(data), con, COMPARISON, outcomes=[])
    with StudySession(parse_spec(data), con) as s:
        acetaminophen = s.resolved["acetaminophen"].concept_ids
    ref = pop.covariate_ref
    assert set(ref.analysis) == {"condition", "drug ingredient"}
    assert not set(ref.concept_id) & acetaminophen and 1125315 in acetaminophen  # 1125315: ingredient acetaminophen


def test_bad_default_set_settings_are_named():
    from follicle.errors import SpecError

    data = load_spec(STUDY).model_dump(mode="json")
    data["covariates"]["default_set"] = {"long_term_start_days": -30, "short_term_start_days": -365,
                                         "excluded_concept_sets": ["ghost"]}
    data["covariates"]["all_drugs"] = True
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    text = "\n".join(info.value.problems)
    assert "covariates.default_set.excluded_concept_sets.0: unknown concept set 'ghost'" in text
    assert "covariates.default_set: windows must nest" in text
    assert "covariates.default_set: the default set already holds every condition and drug ingredient" in text


def test_same_rows_on_postgresql(population, gibleed_pg):
    con, schema = gibleed_pg
    pg = build_population(_spec(), con, COMPARISON, database=schema, outcomes=[])
    key = ["person_id", "covariate_id"]
    a = population.sparse_covariates.sort_values(key).reset_index(drop=True)
    b = pg.sparse_covariates.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(population.covariate_ref, pg.covariate_ref)
