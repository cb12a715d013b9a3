"""Predictor models: logistic = R glm(binomial), linear = R lm (differential, data generated here)."""

import numpy as np
import pandas as pd
import pytest

from follicle.errors import InputError
from follicle.response.predictors import (
    auc,
    calibration,
    design_matrix,
    fit_linear,
    fit_logistic,
    subgroup_table,
    univariable_screen,
)
from rbridge import run_r


def make_patients(n=300, seed=5):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "female": rng.integers(0, 2, n),
            "aa_type": rng.choice(["patchy", "ophiasis", "totalis", "universalis"], n, p=[0.4, 0.15, 0.2, 0.25]),
            "duration": rng.gamma(2.0, 3.0, n).round(2),
            "ivmp": rng.integers(0, 2, n),
        }
    )
    eff = {"patchy": 0.0, "ophiasis": -1.0, "totalis": -0.5, "universalis": -0.7}
    lp = -0.2 + 0.6 * d.female - 0.08 * d.duration + 0.7 * d.ivmp - 0.01 * (d.age - 40) + d.aa_type.map(eff)
    d["salt20"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    d["improvement"] = (40 + 12 * lp + rng.normal(0, 15, n)).round(3)
    return d


PRED = ["age", "female", "aa_type", "duration", "ivmp"]
R_SETUP = 'd$aa_type <- relevel(factor(d$aa_type), ref = "patchy")\n'


@pytest.mark.r
def test_logistic_equals_r_glm(rscript):
    d = make_patients()
    res = fit_logistic(d, "salt20", PRED, reference={"aa_type": "patchy"})
    code = R_SETUP + """
f <- glm(salt20 ~ age + female + aa_type + duration + ivmp, family = binomial, data = d,
         control = glm.control(epsilon = 1e-14, maxit = 100))
s <- summary(f)$coefficients
out("coef", s[, 1]); out("se", s[, 2]); out("p", s[, 4]); ci <- confint.default(f)
out("lo", ci[, 1]); out("hi", ci[, 2])
"""
    ref = run_r(rscript, code, {"d": d})
    # R orders factor dummies alphabetically after the reference, as design_matrix does
    t = res.terms
    np.testing.assert_allclose(t["coef"], ref["coef"], rtol=1e-6)
    np.testing.assert_allclose(t["se"], ref["se"], rtol=1e-6)
    np.testing.assert_allclose(t["p"], ref["p"], rtol=1e-6)
    np.testing.assert_allclose(t["ci_low"], np.exp(ref["lo"]), rtol=1e-6)
    np.testing.assert_allclose(t["ci_high"], np.exp(ref["hi"]), rtol=1e-6)
    np.testing.assert_allclose(t["or"], np.exp(ref["coef"]), rtol=1e-6)
    assert t.loc[t.term == "aa_type[ophiasis]", "reference"].item() == "patchy"


@pytest.mark.r
def test_linear_equals_r_lm(rscript):
    d = make_patients(seed=8)
    res = fit_linear(d, "improvement", PRED, reference={"aa_type": "patchy"})
    code = R_SETUP + """
f <- lm(improvement ~ age + female + aa_type + duration + ivmp, data = d)
s <- summary(f)$coefficients
out("coef", s[, 1]); out("se", s[, 2]); out("p", s[, 4]); ci <- confint(f)
out("lo", ci[, 1]); out("hi", ci[, 2]); out("r2", summary(f)$r.squared)
"""
    ref = run_r(rscript, code, {"d": d})
    t = res.terms
    for mine, theirs in (("coef", "coef"), ("se", "se"), ("p", "p"), ("ci_low", "lo"), ("ci_high", "hi")):
        np.testing.assert_allclose(t[mine], ref[theirs], rtol=1e-6)
    assert res.metrics["r_squared"] == pytest.approx(ref["r2"][0], rel=1e-6)


@pytest.mark.r
def test_calibration_and_auc_equal_r(rscript):
    rng = np.random.default_rng(2)
    risk = rng.uniform(0.05, 0.95, 200)
    y = rng.binomial(1, np.clip(risk * 1.1 - 0.03, 0, 1))
    d = pd.DataFrame({"y": y, "risk": risk})
    code = """
lp <- qlogis(d$risk)
out("slope", coef(glm(y ~ lp, family = binomial, data = d, control = glm.control(epsilon = 1e-14)))[2])
out("citl", coef(glm(y ~ 1 + offset(lp), family = binomial, data = d, control = glm.control(epsilon = 1e-14))))
r <- rank(d$risk); n1 <- sum(d$y); n0 <- sum(1 - d$y)
out("auc", (sum(r[d$y == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0))
"""
    ref = run_r(rscript, code, {"d": d})
    cal = calibration(y, risk)
    assert cal["slope"] == pytest.approx(ref["slope"][0], rel=1e-6)
    assert cal["intercept"] == pytest.approx(ref["citl"][0], rel=1e-6)
    assert auc(y, risk) == pytest.approx(ref["auc"][0], rel=1e-9)


def test_metrics_and_screen():
    d = make_patients(n=400, seed=1)
    res = fit_logistic(d, "salt20", PRED)
    m = res.metrics
    assert 0.5 < m["auc_cv"] <= m["auc_apparent"] + 0.05
    assert 0.3 < m["calibration_slope_cv"] < 2.0
    assert m["reference_levels"] == {"aa_type": "patchy"}  # most frequent level by default
    scr = univariable_screen(d, "salt20", PRED)
    assert set(scr.predictor) == set(PRED)
    assert (scr.term != "(Intercept)").all()
    lin = univariable_screen(d, "improvement", ["age", "duration"], kind="linear")
    assert len(lin) == 2 and lin["or"].isna().all()


def test_firth_option_handles_separation():
    d = make_patients(n=60, seed=4)
    d["marker"] = d["salt20"]  # perfect predictor: ML estimate is infinite
    ml = fit_logistic(d, "salt20", ["marker", "age"], cv_folds=0)
    assert any("covariate 'marker': complete separation" in w for w in ml.warnings)
    t = ml.terms.set_index("term")
    assert t.loc["marker", "coef"] == np.inf and t.loc["(Intercept)", "coef"] == -np.inf
    assert ml.infinite["marker"].startswith("+inf") and ml.infinite["(Intercept)"].startswith("-inf")
    assert ml.infinite["age"].startswith("not estimable")  # complete separation: no patient left to inform it
    fr = fit_logistic(d, "salt20", ["marker", "age"], firth=True, cv_folds=0)
    row = fr.terms.set_index("term").loc["marker"]
    assert np.isfinite(row["coef"]) and row["ci_low"] > 1.0
    assert any("covariate 'marker'" in w and "Firth's penalised estimate is reported" in w for w in fr.warnings)
    assert fr.infinite == {}


def test_subgroups():
    d = make_patients(n=200, seed=9)
    tab = subgroup_table(d, "salt20", "aa_type")
    assert tab.n.sum() == 200 and (tab.ci_low <= tab.rate).all()
    tab2 = subgroup_table(d, "improvement", "female", binary=False)
    assert set(tab2.columns) >= {"mean", "sd", "ci_low", "ci_high"}


def test_bad_input_named():
    d = make_patients(n=30)
    d.index = d.index + 2  # as the CSV reader numbers rows (line numbers)
    one = d.assign(salt20=1)
    with pytest.raises(InputError, match="one class"):
        fit_logistic(one, "salt20", ["age"])
    miss = d.copy()
    miss.loc[5, "age"] = np.nan
    with pytest.raises(InputError, match="row 5, column 'age'"):
        fit_logistic(miss, "salt20", ["age"], source="patients.csv")
    bad = d.copy().astype({"salt20": object})
    bad.loc[7, "salt20"] = "yes"
    with pytest.raises(InputError, match="row 7, column 'salt20'.*0 or 1"):
        fit_logistic(bad, "salt20", ["age"])
    with pytest.raises(InputError, match="no column 'nope'"):
        design_matrix(d, ["nope"])
    with pytest.raises(InputError, match="constant predictor 'k'"):
        fit_logistic(d.assign(k=1.0), "salt20", ["age", "k"])
