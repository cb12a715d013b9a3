"""The CDM route: Ibis extraction of SALT for a drug cohort, and the Wada-Irimada predictor study.

The database is a small CDM written by the test (tests/response/cdm_world.py) with a known
logistic response model; until the synthetic world lands it stands in for it.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import cdm_world
from follicle.cdm.connect import connect
from follicle.cli import app
from follicle.errors import SpecError
from follicle.study.salt_cohort import ResponseStudySpec, extract_analysis_table, load_spec, run_study

SPEC = Path(__file__).resolve().parents[2] / "studies" / "baricitinib_predictors.yaml"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("cdm") / "world.duckdb"
    truth = cdm_world.build(path, n=2000, seed=1)
    return path, truth


def test_spec_round_trips_yaml_and_json():
    spec = load_spec(SPEC)
    again = ResponseStudySpec.model_validate(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    assert again == spec
    assert ResponseStudySpec.model_validate_json(spec.model_dump_json()) == spec
    assert spec.cohort.min_baseline_salt == 50 and spec.outcome.landmark_days == 274
    assert spec.spec_hash() == again.spec_hash()


def test_bad_spec_lists_problems(tmp_path):
    bad = yaml.safe_load(SPEC.read_text())
    bad["outcome"]["imputation"] = "mean"
    bad["predictors"].append({"name": "ivmp", "kind": "drug_history"})
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(SpecError) as err:
        load_spec(p)
    text = err.value.render()
    assert "outcome.imputation" in text and "needs 'codes'" in text


def test_extraction_matches_the_world(world):
    path, truth = world
    spec = load_spec(SPEC)
    con = connect(path, read_only=True)
    try:
        df, attrition = extract_analysis_table(con, spec)
        everyone, _ = extract_analysis_table(con, spec.model_copy(update={
            "cohort": spec.cohort.model_copy(update={"exclude_prior_drugs": None})}))
    finally:
        con.disconnect()
    # 2 extra starters: one with baseline SALT 30, one whose only SALT is a year before index;
    # 10 with earlier oral methylprednisolone are not new users of systemic therapy
    assert [a["n"] for a in attrition] == [2002, 2001, 2000, 1990, 1990, 1990]
    oral = everyone[~everyone.person_id.isin(df.person_id)]
    assert len(oral) == 10 and (oral["ivmp"] == 0).all()  # an oral course is not an IV pulse
    m = df.merge(truth, on="person_id", suffixes=("", "_true"))
    assert len(m) == 1990
    assert (m["female"] == m["female_true"]).all()
    assert (m["ivmp"] == m["ivmp_true"]).all()  # oral methylprednisolone is not counted
    assert (m["aa_type"] == np.where(m["aa_type_true"] == "ophiasis", "ophiasis", "other")).all()
    assert (m["duration_le4"] == m["duration_le4_true"]).all()
    assert np.allclose(m["baseline_salt"], m["baseline_salt_true"])
    assert m["landmark_day"].between(274 - 42, 274 + 42).all()
    assert m["eyebrow_clinro"].isin([0, 1, 2, 3]).all()
    assert ((m["landmark_salt"] <= 20) == (m["responder"] == 1)).all()


def test_study_recovers_true_coefficients_via_cli(world):
    path, _ = world
    saved = path.parent / "results.json"
    res = CliRunner().invoke(app, ["response", "cdm", str(SPEC), "--db", str(path), "--json", "--out", str(saved)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert json.loads(saved.read_text()) == out
    assert ResponseStudySpec.model_validate(out["spec"]).spec_hash() == out["spec_hash"]
    terms = {t["term"]: t for t in out["logistic"]["terms"]}
    for term, beta in cdm_world.TRUTH.items():
        t = terms[term]
        # ci_low/ci_high bound the odds ratio; the true OR must lie inside the 95% CI
        assert t["ci_low"] <= np.exp(beta) <= t["ci_high"], (term, beta, t)
    for term in ("age", "atopic_dermatitis", "eyebrow_clinro", "eyelash_clinro"):  # no true effect
        assert terms[term]["ci_low"] <= 1.0 <= terms[term]["ci_high"]
    assert out["outcome"]["n"] == 1990 and out["spec_hash"]
    assert out["linear"]["kind"] == "linear"
    assert {r["predictor"] for r in out["screen"]} == {p.name for p in load_spec(SPEC).predictors}
    assert {s["subgroup"] for s in out["subgroups"]} == {"aa_type", "female", "ivmp"}


def test_missing_landmark_imputation(tmp_path):
    path = tmp_path / "small.duckdb"
    truth = cdm_world.build(path, n=120, seed=4, missing_landmark=0.25, extra_people=False)
    spec = load_spec(SPEC)
    spec = spec.model_copy(update={
        "predictors": [p for p in spec.predictors if p.name in ("female", "ivmp")],
        "analysis": spec.analysis.model_copy(update={"subgroups": []}),
    })
    out = run_study(spec, str(path))
    how = {a["how"]: a["n"] for a in out["outcome"]["assessment"]}
    missing = int((~truth["landmark_kept"]).sum())
    assert how == {"observed": 120 - missing, "nri": missing}
    # non-responder imputation: responders are only those observed responding
    assert out["outcome"]["events"] == int((truth["responder"] & truth["landmark_kept"]).sum())
    none = spec.model_copy(update={"outcome": spec.outcome.model_copy(update={"imputation": "none"})})
    out2 = run_study(none, str(path))
    assert out2["outcome"]["n"] == 120 - missing


def test_followup_and_exposure_requirements(tmp_path):
    path = tmp_path / "short.duckdb"
    cdm_world.build(path, n=40, seed=2, extra_people=False)
    import duckdb

    con = duckdb.connect(str(path))
    # ten persons stop baricitinib at day 100; five leave observation at day 150
    con.execute("UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_start_date + 10 "
                "WHERE person_id <= 10 AND drug_exposure_start_date > (SELECT min(drug_exposure_start_date) "
                "FROM drug_exposure d WHERE d.person_id = drug_exposure.person_id AND d.drug_concept_id = 1510628)")
    con.execute("UPDATE observation_period SET observation_period_end_date = DATE '2021-01-01' WHERE person_id > 35")
    con.close()
    spec = load_spec(SPEC)
    c = connect(path, read_only=True)
    try:
        _, attrition = extract_analysis_table(c, spec)
    finally:
        c.disconnect()
    assert [a["n"] for a in attrition] == [40, 40, 40, 40, 35, 25]
    assert "observed >= 316 days" in attrition[4]["step"] and "exposed to the drug" in attrition[5]["step"]


def test_empty_cohort_is_a_clear_error(world):
    from follicle.errors import InputError

    path, _ = world
    spec = load_spec(SPEC)
    spec = spec.model_copy(update={"cohort": spec.cohort.model_copy(update={
        "drug": spec.cohort.drug.model_copy(update={"concept_ids": [42904205]})})})  # tofacitinib: nobody
    with pytest.raises(InputError, match="no patients left after the step 'new users of the drug"):
        run_study(spec, str(path))
