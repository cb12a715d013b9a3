"""Ground truth: the Cox kernel against lifelines, and the marginal HR in cases with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from follicle.synth import WorldConfig, cox_binary, simulate


def test_cox_binary_matches_lifelines_breslow_no_ties():
    rng = np.random.default_rng(3)
    n = 3000
    z = rng.integers(0, 2, n)
    t = rng.exponential(1 / np.exp(0.4 * z))
    c = rng.exponential(2.0, n)
    time, event = np.minimum(t, c), t <= c
    beta, se = cox_binary(time, event, z)
    cph = CoxPHFitter().fit(pd.DataFrame({"T": time, "E": event, "z": z}), "T", "E")
    assert beta == pytest.approx(cph.params_["z"], rel=1e-6)
    assert se == pytest.approx(cph.standard_errors_["z"], rel=1e-5)


def test_negative_controls_have_true_hr_one(truth):
    nc = [e for e in truth["effects"] if e["group"] == "negative_control"]
    assert len(nc) >= 2 * 5
    for e in nc:
        assert e["true_hr"] == pytest.approx(1.0, abs=1e-9)
    json.dumps(truth)  # JSON-able


def test_marginal_equals_conditional_without_covariate_effects():
    """With no covariate effects and no switching the HR is collapsible: marginal = conditional."""
    base = WorldConfig()
    procs = [p.model_copy(update={"log_hr": {}}) for p in base.processes]
    cfg = base.model_copy(update={
        "processes": procs,
        "treatment": base.treatment.model_copy(update={"switch_share": 0.0}),
        "truth": base.truth.model_copy(update={"target_persons": 150_000}),
    })
    w = simulate(cfg, persons=20_000, seed=4)
    effects = {(e["comparison"], e["outcome"]): e for e in w.truth()["effects"]}
    e = effects[("jaki_vs_corticosteroid", "insomnia")]
    assert e["true_hr"] == pytest.approx(e["conditional_hr"], rel=0.03)


def test_marginal_is_attenuated_towards_one_with_strong_covariates(truth):
    """Non-collapsibility: with covariate effects the marginal HR lies between 1 and the conditional HR."""
    e = next(e for e in truth["effects"]
             if e["comparison"] == "jaki_vs_corticosteroid" and e["outcome"] == "insomnia")
    assert e["conditional_hr"] < e["true_hr"] < 1.0


def test_truth_states_estimand_and_parameters(world, truth):
    assert "marginal" in truth["estimand"] and "counterfactual" in truth["method"]
    assert WorldConfig.model_validate(truth["parameters"]) == world.config
    pairs = {(e["comparison"], e["outcome"]) for e in truth["effects"]}
    assert len(pairs) == 2 * len(world.config.study_outcomes)


@pytest.mark.r
def test_cox_binary_matches_r_survival_breslow_with_ties(rscript):
    """Differential test: survival::coxph(ties = "breslow") on integer-day data with many ties."""
    from tests.rbridge import run_r

    rng = np.random.default_rng(8)
    n = 2000
    z = rng.integers(0, 2, n)
    t = np.ceil(rng.exponential(200 / np.exp(-0.3 * z)))
    c = np.ceil(rng.uniform(50, 600, n))
    df = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "z": z})
    res = run_r(rscript, """library(survival)
fit <- coxph(Surv(time, event) ~ z, data = d, ties = "breslow")
out("beta", coef(fit)); out("se", sqrt(vcov(fit)[1, 1]))""", {"d": df})
    beta, se = cox_binary(df.time.to_numpy(float), df.event.to_numpy(bool), df.z.to_numpy())
    assert beta == pytest.approx(res["beta"][0], rel=1e-6)
    assert se == pytest.approx(res["se"][0], rel=1e-6)


def test_ate_truth_is_taken_over_both_classes_initiators():
    """Without covariate effects and switching the HR is collapsible and the same in every population:
    ATT and ATE truths equal the conditional HR; with covariate effects they are distinct estimands
    (different populations), negative controls stay at 1 in both."""
    base = WorldConfig()
    procs = [p.model_copy(update={"log_hr": {}}) for p in base.processes]
    cfg = base.model_copy(update={
        "processes": procs,
        "treatment": base.treatment.model_copy(update={"switch_share": 0.0}),
        "truth": base.truth.model_copy(update={"target_persons": 150_000}),
    })
    w = simulate(cfg, persons=20_000, seed=4)
    ate = {(e["comparison"], e["outcome"]): e for e in w.truth(estimand="ate")["effects"]}
    e = ate[("jaki_vs_corticosteroid", "insomnia")]
    assert e["estimand"] == "ATE" and e["true_hr"] == pytest.approx(e["conditional_hr"], rel=0.03)
    att = {(e["comparison"], e["outcome"]): e for e in w.truth()["effects"]}
    assert e["target_population"] > att[("jaki_vs_corticosteroid", "insomnia")]["target_population"]
    with pytest.raises(ValueError, match="'estimand'"):
        w.truth(estimand="atc")


def test_ate_truth_of_the_default_world(world, truth):
    ate = world.truth(estimand="ate")
    assert "comparator-class initiators together" in ate["estimand"]
    for e in ate["effects"]:
        assert e["estimand"] == "ATE"
        if e["group"] == "negative_control":
            assert e["true_hr"] == pytest.approx(1.0, abs=1e-9)
