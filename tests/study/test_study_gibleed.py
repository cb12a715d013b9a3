"""Acceptance on Eunomia GiBleed: the Book of OHDSI celecoxib vs diclofenac new-user cohorts.

Reference numbers: Book of OHDSI (2021), exercises of ch. 12 "Population-Level Estimation"
(`SuggestedAnswers.Rmd`), as quoted in ../shared/data/omop/README.md: new users with >= 365 days
of prior observation, celecoxib 1,800 and diclofenac 830; GI bleed (192671 and descendants)
in 355 and 124 of them.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pytest

from follicle.study.population import StudySession, build_population
from follicle.study.spec import load_spec

SPEC = Path(__file__).with_name("gibleed_spec.yaml")


@pytest.fixture(scope="module")
def population(gibleed_db):
    con = ibis.duckdb.connect(str(gibleed_db), read_only=True)
    return build_population(load_spec(SPEC), con, "cel_vs_dic")


def test_book_of_ohdsi_cohort_sizes(population):
    table = population.table
    assert (table.treatment == 1).sum() == 1800  # Book of OHDSI: celecoxib new users
    assert (table.treatment == 0).sum() == 830  # Book of OHDSI: diclofenac new users


def test_book_of_ohdsi_outcome_counts(population):
    events = population.table.groupby("treatment")["gi_bleed_event"].sum()
    assert events[1] == 355 and events[0] == 124  # Book of OHDSI: GI bleed in each cohort


def test_attrition_steps(population):
    a = population.attrition.set_index(["cohort", "step"])["persons"]
    assert a[("celecoxib", "entry")] == 1844  # README: persons with any celecoxib exposure
    assert a[("diclofenac", "entry")] == 850
    assert a[("celecoxib", "prior_obs")] == 1800
    assert a[("cel_vs_dic", "in_both")] == 0
    assert a[("cel_vs_dic", "time_at_risk")] == 2630


def test_analysis_table_columns_and_values(population, gibleed_dir):
    t = population.table
    for col in ["person_id", "treatment", "index_date", "age", "sex", "cov_age", "cov_female",
                "followup_days", "gi_bleed_event", "gi_bleed_days", "gi_bleed_prior"]:
        assert col in t.columns
    assert t.person_id.is_unique
    assert (t.gi_bleed_days <= t.followup_days).all()
    assert (t.gi_bleed_days >= t.tar_start_day).all()
    # independent check of index dates and age from the raw CSVs with pandas
    drug = pd.read_csv(gibleed_dir / "drug_exposure.csv", usecols=["person_id", "drug_concept_id", "drug_exposure_start_date"])
    anc = pd.read_csv(gibleed_dir / "concept_ancestor.csv")
    cel = set(anc.loc[anc.ancestor_concept_id == 1118084, "descendant_concept_id"])
    first = drug[drug.drug_concept_id.isin(cel)].groupby("person_id").drug_exposure_start_date.min()
    mine = t[t.treatment == 1].set_index("person_id").index_date.dt.strftime("%Y-%m-%d")
    assert (first.loc[mine.index] == mine).all()
    person = pd.read_csv(gibleed_dir / "person.csv").set_index("person_id")
    years = pd.to_datetime(t.index_date).dt.year.to_numpy() - person.loc[t.person_id, "year_of_birth"].to_numpy()
    assert (years == t.age.to_numpy()).all()


def test_sparse_covariates(gibleed_db):
    spec = load_spec(SPEC)
    spec = spec.model_copy(update={"covariates": spec.covariates.model_copy(update={"all_conditions": True, "all_drugs": True})})
    con = ibis.duckdb.connect(str(gibleed_db), read_only=True)
    pop = build_population(spec, con, "cel_vs_dic")
    sparse, ref = pop.sparse_covariates, pop.covariate_ref
    assert len(sparse) > 0 and set(sparse.columns) == {"person_id", "covariate_id", "value"}
    assert set(sparse.person_id) <= set(pop.table.person_id)
    assert set(sparse.covariate_id) == set(ref.covariate_id)
    assert not sparse.duplicated(["person_id", "covariate_id"]).any()
    # the compared drugs are not covariates
    drug_concepts = set(ref.loc[ref.analysis == "drug", "concept_id"])
    with StudySession(spec, con) as s:
        assert not drug_concepts & (s.resolved["celecoxib"].concept_ids | s.resolved["diclofenac"].concept_ids)
    assert ref.covariate_name.str.len().min() > 0


def test_without_temporary_tables_gives_the_same_table(gibleed_db, population):
    """materialize=False (plain nested expressions, e.g. for engines without temp tables) agrees."""
    con = ibis.duckdb.connect(str(gibleed_db), read_only=True)
    plain = build_population(load_spec(SPEC), con, "cel_vs_dic", materialize=False)
    pd.testing.assert_frame_equal(plain.table, population.table)
    pd.testing.assert_frame_equal(plain.attrition, population.attrition)


def test_missing_domain_table_is_a_clear_error(tmp_path):
    """A CDM without drug_exposure: one DatabaseError naming the table, not a trace."""
    import duckdb

    from follicle.errors import DatabaseError

    db = tmp_path / "cdm.duckdb"
    raw = duckdb.connect(str(db))
    raw.execute("CREATE TABLE person (person_id BIGINT, year_of_birth INT, gender_concept_id INT)")
    raw.execute("CREATE TABLE observation_period (person_id BIGINT, observation_period_start_date DATE,"
                " observation_period_end_date DATE)")
    raw.close()
    con = ibis.duckdb.connect(str(db), read_only=True)
    with pytest.raises(DatabaseError, match="drug_exposure"):
        build_population(load_spec(SPEC), con, "cel_vs_dic")
