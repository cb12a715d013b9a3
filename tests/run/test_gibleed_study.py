"""The Book of OHDSI's population-level estimation example on Eunomia GiBleed, from the CLI.

`bash scripts/gibleed.sh` loads ../shared/data/omop/gibleed and runs
studies/gibleed_celecoxib_diclofenac.yaml (crude, 1:1 matching, 5 PS strata, IPTW ATT and ATE);
the results are checked against the published figures.

Reference: The Book of OHDSI (OHDSI 2021), chapter 12 "Population-Level Estimation", exercises
12.1-12.6 with their answers in the appendix "Suggested Answers" (OHDSI/TheBookOfOhdsi,
SuggestedAnswers.Rmd), computed with CohortMethod on Eunomia:
- 1,800 celecoxib and 830 diclofenac new users; 479 persons with the outcome;
- crude Cox model: HR 1.34612 (95% CI 1.10065-1.65741), log HR 0.29723, SE 0.1044;
- propensity model AUC 0.63; after stratification into 5 PS strata the largest |SMD| is <= 0.1;
- Cox model stratified by the 5 PS strata: HR 1.13211 (0.92132-1.40008), log HR 0.12409, SE 0.1068.

Tolerances. Counts: exact. Crude: the same people, events and model, so log HR within 0.001 and SE
within 1%; CI bounds within 1% (CohortMethod reports profile-likelihood intervals, Follicle Wald
intervals). Stratified: the PS comes from a different implementation of the large-scale L1 model
(scikit-learn's liblinear with its own cross-validation grid, not Cyclops) on Follicle's default
covariate set, so stratum boundaries differ for a few people: log HR within 0.05 (5% on the HR
scale), SE within 5%, AUC within 0.03. docs/gibleed.md explains the differences.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import ibis
import pytest

from follicle.run.results import COUNT_KEYS
from follicle.run.study import run_study
from follicle.study.population import build_population
from follicle.study.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "studies" / "gibleed_celecoxib_diclofenac.yaml"
BOOK = {"n_target": 1800, "n_comparator": 830, "outcomes": 479,
        "crude": {"log_hr": 0.29723, "se": 0.1044, "hr": 1.34612, "low": 1.10065, "high": 1.65741},
        "strata": {"log_hr": 0.12409, "se": 0.1068, "hr": 1.13211, "low": 0.92132, "high": 1.40008},
        "auc": 0.63}
ESTIMATE_FIELDS = ("adjustment", "name", "hr", "hr_ci_low", "hr_ci_high", "p", "n_target", "n_comparator",
                   "events_target", "events_comparator")


@pytest.fixture(scope="module")
def script_run(shared_dir, tmp_path_factory):
    """scripts/gibleed.sh as a user runs it (load, check, summary, study), into a temporary folder."""
    tmp = tmp_path_factory.mktemp("gibleed")
    follicle = Path(sys.executable).with_name("follicle")
    env = os.environ | {"FOLLICLE_SHARED": str(shared_dir), "FOLLICLE_DB": str(tmp / "gibleed.duckdb"),
                        "FOLLICLE_OUT": str(tmp / "out"), "FOLLICLE_BIN": str(follicle)}
    res = subprocess.run(["bash", str(REPO / "scripts" / "gibleed.sh")], env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    results = json.loads((tmp / "out" / "results.json").read_text())
    return tmp, results, res.stdout


def _comparison(results):
    (comp,) = results["comparisons"]
    return comp


def _estimate(comp, outcome, name):
    o = next(o for o in comp["outcomes"] if o["outcome"] == outcome)
    return next(e for e in o["estimates"] if e["name"] == name)


def test_counts_are_the_books(script_run):
    _, results, _ = script_run
    comp = _comparison(results)
    assert (comp["n_target_before"], comp["n_comparator_before"]) == (BOOK["n_target"], BOOK["n_comparator"])
    crude = _estimate(comp, "gi_bleed", "crude")
    assert (crude["n_target"], crude["n_comparator"]) == (1800, 830)
    assert crude["events_target"] + crude["events_comparator"] == BOOK["outcomes"]  # 355 + 124
    steps = {(a["cohort"], a["step"]): a["count"] for a in comp["attrition"]}
    assert steps[("celecoxib", "entry")] == 1844 and steps[("diclofenac", "entry")] == 850
    assert steps[("celecoxib_vs_diclofenac", "time_at_risk")] == 2630


def test_crude_hazard_ratio_is_the_books(script_run):
    _, results, _ = script_run
    e = _estimate(_comparison(results), "gi_bleed", "crude")
    ref = BOOK["crude"]
    assert abs(e["log_hr"] - ref["log_hr"]) < 0.001, e
    assert e["se_log_hr"] == pytest.approx(ref["se"], rel=0.01)
    assert e["hr_ci_low"] == pytest.approx(ref["low"], rel=0.01)
    assert e["hr_ci_high"] == pytest.approx(ref["high"], rel=0.01)


def test_ps_stratified_hazard_ratio_is_the_books(script_run):
    _, results, _ = script_run
    comp = _comparison(results)
    e = _estimate(comp, "gi_bleed", "ps_strata_5")
    ref = BOOK["strata"]
    assert e["adjustment"] == "stratification"
    assert abs(e["log_hr"] - ref["log_hr"]) < 0.05, e
    assert e["se_log_hr"] == pytest.approx(ref["se"], rel=0.05)
    assert abs(comp["propensity"]["auc"] - BOOK["auc"]) < 0.03, comp["propensity"]
    strata = next(a for a in comp["adjustments"] if a["name"] == "ps_strata_5")
    assert strata["max_abs_smd"] <= 0.1  # the Book: "the maximum standardized difference <= 0.1"
    crude = next(a for a in comp["adjustments"] if a["name"] == "crude")
    assert crude["max_abs_smd"] > 0.3  # the Book: "various covariates showed a large (>0.3) difference before"


def test_every_outcome_carries_every_adjustment(script_run):
    tmp, results, stdout = script_run
    comp = _comparison(results)
    names = ["crude", "matched_1to1", "ps_strata_5", "iptw_att", "iptw_ate"]
    assert [a["name"] for a in comp["adjustments"]] == names
    assert comp["primary_adjustment"] == "ps_strata_5" and [a["primary"] for a in comp["adjustments"]].count(True) == 1
    assert len(comp["outcomes"]) == 9  # GI bleed and 8 negative controls
    for o in comp["outcomes"]:
        assert [e["name"] for e in o["estimates"]] == names
        for e in o["estimates"]:
            assert set(ESTIMATE_FIELDS) <= set(e), e
        primary = next(e for e in o["estimates"] if e["name"] == "ps_strata_5")
        for key in ("hr", "hr_ci_low", "hr_ci_high", "p", "n_target", "events_target"):
            assert o[key] == primary[key], key  # the top-level fields are the primary adjustment's
    matched = next(a for a in comp["adjustments"] if a["name"] == "matched_1to1")
    # 829 matched pairs of 830 diclofenac users: the one comparator left unmatched is a small cell, and
    # in 1:1 sets the matched targets equal the matched comparators, so both counts (and the number of
    # sets) are withheld; the estimates are shown (docs/privacy.md)
    assert matched["n_target"] is None and matched["n_comparator"] is None and matched["details"]["matched_sets"] is None
    assert _estimate(comp, "gi_bleed", "matched_1to1")["hr"] is not None
    for a in comp["adjustments"]:
        assert a["empirical_null"] is not None and a["empirical_null"]["n_controls"] == 8
    # the attrition continues through each adjustment (issue 16 point 4), in results.json and the report
    steps = {(a.get("adjustment"), a["step"]): a["count"] for a in comp["attrition"]}
    assert steps[("ps_strata_5", "stratified_target")] == 1800 and steps[("ps_strata_5", "stratified_comparator")] == 830
    assert steps[("iptw_att", "weighted_target_iptw_att")] == 1800
    assert steps[("matched_1to1", "matched_comparator_matched_1to1")] is None  # withheld with its linked arm
    assert not [s for (a, s) in steps if a == "crude"]
    assert "ps_strata_5" in stdout and "iptw_att" in stdout  # the CLI prints every adjustment
    html = (tmp / "out" / "report.html").read_text()
    for name in names:
        assert f'id="celecoxib_vs_diclofenac-{name}"' in html
    assert "comparator in propensity-score strata holding both arms (5 strata), adjustment ps_strata_5" in html
    assert "Kaplan-Meier curves: gi_bleed, crude" in html and "Kaplan-Meier curves: gi_bleed, matched_1to1" in html


def test_diagnostics_per_estimate(script_run):
    """Every estimate carries balance, equipoise, MDRR and EASE with PASS/FAIL and an overall flag;
    the crude estimate fails on balance (the cohorts differ before adjustment), the PS strata pass."""
    tmp, results, _ = script_run
    comp = _comparison(results)
    for o in comp["outcomes"]:
        for e in o["estimates"]:
            names = [d["name"] for d in e["diagnostics"]]
            assert names == ["max |SMD| after adjustment", "equipoise (share with preference 0.3-0.7)",
                             "minimum detectable relative risk", "expected absolute systematic error (EASE)"]
            assert {d["status"] for d in e["diagnostics"]} <= {"PASS", "FAIL", "NOT_EVALUATED"}
            fails = any(d["status"] == "FAIL" for d in e["diagnostics"])
            assert e["diagnostics_overall"] == ("FAIL" if fails else "PASS")
    crude = _estimate(comp, "gi_bleed", "crude")
    assert crude["diagnostics"][0]["status"] == "FAIL" and crude["diagnostics_overall"] == "FAIL"
    strata = _estimate(comp, "gi_bleed", "ps_strata_5")
    assert [d["status"] for d in strata["diagnostics"]] == ["PASS"] * 4, strata["diagnostics"]
    assert strata["mdrr"] == pytest.approx(math.exp(math.sqrt(2.8016**2 / (479 * 1800 / 2630 * 830 / 2630))), rel=1e-3)
    html = (tmp / "out" / "report.html").read_text()
    assert "MDRR" in html and "EASE" in html


def test_no_small_count_leaves(script_run):
    tmp, results, _ = script_run

    def walk(obj, path=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in COUNT_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                    assert not 1 <= v <= 9, f"{path}.{k} = {v}"
                walk(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")

    walk({k: v for k, v in results.items() if k != "spec"})
    cells = re.findall(r'class="count">([^<]*)<', (tmp / "out" / "report.html").read_text())
    assert cells and not [c for c in cells if re.fullmatch(r"\s*[1-9]\s*", c.replace(",", ""))]


def _variant(tmp: Path, name: str, change) -> dict:
    data = load_spec(STUDY).model_dump(mode="json")
    change(data)
    done = run_study(parse_spec(data), tmp / "gibleed.duckdb", tmp / name)
    return done.results


def test_crude_without_any_covariate(script_run):
    """The issue's first failure: a spec with no covariates and a crude adjustment gives the crude HR."""
    tmp, results, _ = script_run

    def change(d):
        d["covariates"] = {"demographics": False}
        d["analysis"]["adjustments"] = [{"kind": "crude", "name": "crude"}]
        d["analysis"]["primary"] = None

    doc = _variant(tmp, "crude_only", change)
    comp = _comparison(doc)
    e = _estimate(comp, "gi_bleed", "crude")
    assert e["hr"] == pytest.approx(_estimate(_comparison(results), "gi_bleed", "crude")["hr"], rel=1e-12)
    assert comp["propensity"]["auc"] is None and comp["balance"] == []
    balance = next(d for d in comp["diagnostics"] if d["name"].startswith("max |SMD|"))
    assert balance["status"] == "NOT_EVALUATED"


def test_on_treatment_time_at_risk_on_one_day_exposures(script_run):
    """GiBleed's exposures last one day. On treatment (cohort start to cohort end) every window is
    0 days long, so CohortMethod's min_days_at_risk = 1 removes everyone (attrition says so); with 30
    surveillance days the window is 31 days (end - start + 1) and the estimates exist."""
    tmp, _, _ = script_run

    def on_treatment(surveillance):
        def change(d):
            d["time_at_risk"] |= {"end_offset": 0, "end_anchor": "cohort_end"}
            for c in d["cohorts"].values():
                c["surveillance_days"] = surveillance
            d["comparisons"]["celecoxib_vs_diclofenac"]["negative_controls"] = []
            d["analysis"]["adjustments"] = [{"kind": "crude", "name": "crude"}]
            d["analysis"]["primary"] = None
        return change

    data = load_spec(STUDY).model_dump(mode="json")
    on_treatment(0)(data)
    con = ibis.duckdb.connect(str(tmp / "gibleed.duckdb"), read_only=True)
    pop = build_population(parse_spec(data), con, "celecoxib_vs_diclofenac", outcomes=[])
    steps = pop.attrition.set_index(["cohort", "step"])["persons"]
    assert steps[("celecoxib_vs_diclofenac", "overlap_target")] == 1800 and len(pop.table) == 0
    assert steps[("celecoxib_vs_diclofenac", "time_at_risk")] == 0
    con.disconnect()

    doc = _variant(tmp, "on_treatment", on_treatment(30))
    e = next(o for o in _comparison(doc)["outcomes"] if o["outcome"] == "gi_bleed")
    assert e["mean_followup_days_target"] is not None and e["mean_followup_days_target"] <= 31
    assert e["n_target"] == 1800 and e["person_years_target"] > 1800 * 30 / 365.25 * 0.9
    assert e["hr"] is None or math.isfinite(e["hr"])


def _ci(e) -> str:
    return f"{e['hr']:.2f} ({e['hr_ci_low']:.2f}-{e['hr_ci_high']:.2f})"


def test_docs_table_is_what_the_run_produced(script_run):
    """docs/gibleed.md sets these results beside the Book's: its Follicle column must be this run's."""
    _, results, _ = script_run
    comp = _comparison(results)
    est = {e["name"]: e for e in next(o for o in comp["outcomes"] if o["outcome"] == "gi_bleed")["estimates"]}
    adj = {a["name"]: a for a in comp["adjustments"]}
    crude, strata = est["crude"], est["ps_strata_5"]
    expected = {
        "celecoxib / diclofenac new users": f"{comp['n_target_before']:,} / {comp['n_comparator_before']:,}",
        "persons with the outcome in the time at risk":
            f"{crude['events_target'] + crude['events_comparator']} ({crude['events_target']} + {crude['events_comparator']})",
        "covariates in the propensity model": str(comp["propensity"]["n_covariates"]),
        "propensity model AUC": f"{comp['propensity']['auc']:.2f}",
        "crude: HR (95% CI)": _ci(crude),
        "crude: log HR (SE)": f"{crude['log_hr']:.4f} ({crude['se_log_hr']:.4f})",
        "5 PS strata: largest abs SMD after stratification": f"{adj['ps_strata_5']['max_abs_smd']:.3f}",
        "5 PS strata: HR (95% CI)": _ci(strata),
        "5 PS strata: log HR (SE)": f"{strata['log_hr']:.4f} ({strata['se_log_hr']:.4f})",
        "1:1 matching: HR (95% CI)": _ci(est["matched_1to1"]),
        "IPTW (ATT): HR (95% CI)": _ci(est["iptw_att"]),
        "IPTW (ATE, weights truncated at the 1st/99th percentiles): HR (95% CI)": _ci(est["iptw_ate"]),
    }
    text = (REPO / "docs" / "gibleed.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4:
            rows[cells[0]] = cells[2]
    for label, value in expected.items():
        assert rows.get(label) == value, (label, rows.get(label), value)
    diag = {d["name"]: d["value"] for d in strata["diagnostics"]}
    assert f"equipoise {diag['equipoise (share with preference 0.3-0.7)']:.2f}" in text
    assert f"MDRR {strata['mdrr']:.2f}" in text
    assert f"largest |SMD| {adj['crude']['max_abs_smd']:.2f}" in text


def test_a_failed_adjustment_leaves_the_others(script_run):
    """A propensity model that separates the arms (every condition as a covariate, as issue 16's test)
    or a caliper that matches nobody makes those adjustments not estimable, named; the crude estimate
    of the same comparison is still given, and the run says it is not complete."""
    tmp, results, _ = script_run

    def separating(d):
        d["covariates"] = {"demographics": True, "all_conditions": True, "window": {"start": -365, "end": 0}}
        d["analysis"]["adjustments"] = [{"kind": "crude", "name": "crude"}, {"kind": "matching", "name": "matched"}]
        d["analysis"]["primary"] = None
        d["analysis"]["propensity"] = {"penalty": "none"}  # maximum likelihood: separation has no finite fit

    comp = _comparison(_variant(tmp, "separating", separating))
    assert comp["status"] == "estimated"
    crude, matched = _estimate(comp, "gi_bleed", "crude"), _estimate(comp, "gi_bleed", "matched")
    assert crude["hr"] == pytest.approx(_estimate(_comparison(results), "gi_bleed", "crude")["hr"], rel=1e-12)
    assert matched["status"] == "not estimable" and matched["label"] == "not estimable (propensity model cannot be fitted)"
    assert any("propensity model cannot be fitted" in w for w in comp["warnings"])

    def no_pairs(d):
        d["analysis"]["adjustments"] = [{"kind": "crude", "name": "crude"},
                                        {"kind": "matching", "name": "matched", "caliper": 1e-9, "caliper_scale": "ps",
                                         "ratio": 100}]  # complete 1:100 sets of equal PS: none
        d["analysis"]["primary"] = None

    doc = _variant(tmp, "no_pairs", no_pairs)
    comp = _comparison(doc)
    assert _estimate(comp, "gi_bleed", "matched")["label"] == "not estimable (no pairs within the caliper)"
    assert _estimate(comp, "gi_bleed", "crude")["hr"] is not None
    steps = {a["step"]: a["count"] for a in comp["attrition"] if a["cohort"] == "celecoxib_vs_diclofenac"}
    assert steps["matched_target_matched"] == 0
    assert doc["complete"] is False
    assert "celecoxib_vs_diclofenac, gi_bleed, matched: not estimable (no pairs within the caliper)" in doc["not_estimated"]
