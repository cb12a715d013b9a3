"""Adjustments of a comparison (crude, matching, stratification, IPTW): who is analysed, with which
weights and groups, and the outcome model each implies, checked against R's survival::coxph on
generated confounded data (same people, weights and groups; 1e-6 relative)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from follicle.causal import fit_propensity, ipw_weights, match, stratify
from follicle.run.adjust import ESTIMANDS, adjust
from follicle.run.estimate import estimate_outcome, outcome_frame
from follicle.study.settings import AnalysisSettings, OutcomeModelSettings
from rbridge import run_r

ADJUSTMENTS = AnalysisSettings.model_validate({"adjustments": [
    {"kind": "crude", "name": "crude"},
    {"kind": "matching", "name": "matched", "caliper": 0.2, "order": "closest"},
    {"kind": "matching", "name": "matched_pairs", "caliper": 0.2, "ratio": 2, "variable_ratio": True,
     "stratify_by_pair": True},
    {"kind": "stratification", "name": "strata", "n_strata": 5},
    {"kind": "iptw", "name": "ate", "estimand": "ate", "truncate_percentile": 1},
    {"kind": "iptw", "name": "att", "estimand": "att", "stabilized": False},
]}).adjustments
SETTINGS = OutcomeModelSettings(ties="breslow")


def confounded(n: int = 4000, seed: int = 3, log_hr: float = np.log(0.7)) -> pd.DataFrame:
    """Two confounders raise both the chance of treatment and the hazard; integer days (ties)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(0, 1, n)
    sick = rng.binomial(1, 0.3, n)
    t = rng.binomial(1, 1 / (1 + np.exp(-(-0.4 + 0.8 * age + 1.0 * sick))))
    hazard = 0.002 * np.exp(log_hr * t + 0.6 * age + 0.8 * sick)
    event_day = np.ceil(rng.exponential(1 / hazard)).astype(int)
    censor = rng.integers(30, 900, n)
    days = np.minimum(event_day, censor)
    return pd.DataFrame({"person_id": np.arange(n), "treatment": t, "age": age, "sick": sick,
                         "y_days": days, "y_event": (event_day <= censor).astype(int), "y_prior": 0,
                         "tar_start_day": 1})


@pytest.fixture(scope="module")
def fitted():
    data = confounded()
    X = data[["age", "sick"]]
    t = data["treatment"].to_numpy()
    ps = fit_propensity(X, t).ps_
    out = {}
    for adj in ADJUSTMENTS:
        cohort = adjust(adj, t, ps, X.to_numpy(), ["age", "sick"], X.astype(float), threshold=0.1)
        frame = outcome_frame(data, "y", cohort)
        est = estimate_outcome(frame, "y", negative_control=False, settings=SETTINGS, adjustment=adj,
                               labels=("t", "c"), risk_window=None)
        out[adj.name] = (cohort, frame, est)
    return data, ps, out


def test_who_is_analysed_and_with_which_weights(fitted):
    data, ps, out = fitted
    t = data["treatment"].to_numpy()
    crude, _, _ = out["crude"]
    assert (crude.weights == 1).all() and crude.groups is None and crude.n_target == t.sum()
    np.testing.assert_allclose(crude.balance["smd_after"], crude.balance["smd_before"])  # nothing adjusted
    m = match(ps, t, caliper=0.2, order="closest")
    matched, _, _ = out["matched"]
    np.testing.assert_array_equal(matched.groups, m.set_ids())
    np.testing.assert_allclose(matched.weights, m.weights())
    assert matched.n_target == matched.n_comparator == m.n_pairs and matched.details["caliper_width"] == m.caliper_width
    strata, _, _ = out["strata"]
    np.testing.assert_array_equal(strata.groups, stratify(ps, t, n_strata=5))
    ate, _, _ = out["ate"]
    np.testing.assert_allclose(ate.weights, ipw_weights(ps, t, estimand="ate", truncate=(1, 99)))
    assert ate.outcome_weighted and ate.estimand == ESTIMANDS["iptw:ate"]
    assert out["att"][0].estimand == ESTIMANDS["iptw:att"] and matched.estimand == ESTIMANDS["matching"]
    # every adjustment on the PS balances the two confounders far better than nothing
    for name in ("matched", "matched_pairs", "strata", "ate", "att"):
        cohort = out[name][0]
        assert cohort.max_abs_smd < 0.1, (name, cohort.balance)
    assert crude.max_abs_smd > 0.3


def test_no_propensity_score_is_a_clear_error():
    data = confounded(200)
    X = data[["age", "sick"]]
    with pytest.raises(ValueError, match="'matched' .*needs propensity scores"):
        adjust(ADJUSTMENTS[1], data["treatment"].to_numpy(), None, X.to_numpy(), ["age", "sick"], X, threshold=0.1)


def test_descriptive_statistics_only_for_unweighted_designs(fitted):
    _, _, out = fitted
    for name, (_, _, est) in out.items():
        assert est.numbers["hr"] > 0
        has_km = bool(est.curves) and "logrank_p" in est.numbers and "rd" in est.numbers
        assert has_km == (name in ("crude", "matched", "matched_pairs")), name


R_CODE = r"""
library(survival)
ctl <- coxph.control(eps = 1e-12, iter.max = 100)
one <- function(name, f) { out(paste0(name, "_coef"), coef(f)); out(paste0(name, "_se"), sqrt(diag(f$var))) }
one("crude", coxph(Surv(time, event) ~ treatment, data = crude, ties = "breslow", control = ctl))
one("matched", coxph(Surv(time, event) ~ treatment, cluster = group, data = matched, ties = "breslow", control = ctl))
one("matched_pairs", coxph(Surv(time, event) ~ treatment + strata(group), cluster = group, data = matched_pairs,
                           ties = "breslow", control = ctl))
one("strata", coxph(Surv(time, event) ~ treatment + strata(group), data = strata, ties = "breslow", control = ctl))
one("ate", coxph(Surv(time, event) ~ treatment, weights = weight, robust = TRUE, data = ate, ties = "breslow", control = ctl))
one("att", coxph(Surv(time, event) ~ treatment, weights = weight, robust = TRUE, data = att, ties = "breslow", control = ctl))
"""


@pytest.mark.r
def test_outcome_models_match_r_coxph(fitted, rscript):
    """Each design's Cox model equals R's: crude (model SE), matched (cluster = set), matched with a
    baseline hazard per set (strata + cluster, as R reports it), PS strata (strata(), model SE),
    IPTW ATE truncated and ATT unstabilised (case weights, robust = TRUE)."""
    _, _, out = fitted
    frames = {name: frame[["time", "event", "treatment", "group", "weight"]].assign(event=lambda f: f.event.astype(int))
              for name, (_, frame, _) in out.items()}
    ref = run_r(rscript, R_CODE, frames)
    for name, (_, _, est) in out.items():
        assert est.numbers["log_hr"] == pytest.approx(ref[f"{name}_coef"][0], rel=1e-6), name
        assert est.numbers["se_log_hr"] == pytest.approx(ref[f"{name}_se"][0], rel=1e-6), name


def test_adjusted_estimates_move_from_the_confounded_crude_towards_the_truth(fitted):
    """True conditional log-HR is log(0.7); the confounders push the crude HR above 1."""
    _, _, out = fitted
    crude = out["crude"][2].numbers["hr"]
    assert crude > 0.95
    for name in ("matched", "strata", "ate", "att"):
        hr = out[name][2].numbers
        assert abs(np.log(hr["hr"]) - np.log(0.7)) < abs(np.log(crude) - np.log(0.7)) / 2, (name, hr["hr"], crude)
        assert hr["hr_ci_low"] < 0.7 * 1.15 and hr["hr_ci_high"] > 0.7 * 0.85, (name, hr)


def test_adjustment_details_leak_no_small_count(fitted):
    """Matched sets are people; an ESS equals the arm size under equal weights: both hidden when small."""
    from dataclasses import replace

    from follicle.run.results import details_record

    _, _, out = fitted
    matched, att = out["matched"][0], out["att"][0]
    small = replace(matched, details={**matched.details, "matched_sets": 7}, n_target=7, n_comparator=7)
    assert details_record(small, 10)["matched_sets"] == "<10"
    tiny = replace(att, n_target=6, details={**att.details, "ess_target": 6.0})
    rec = details_record(tiny, 10)
    assert rec["ess_target"] is None and rec["ess_comparator"] == pytest.approx(att.details["ess_comparator"])
    assert details_record(att, 10)["ess_target"] == pytest.approx(att.n_target)  # large: shown
