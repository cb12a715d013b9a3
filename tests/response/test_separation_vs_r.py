"""Separation in logistic regression vs R's glm (differential, data generated here; 1e-6 relative).

R's ``glm`` on separated data stops at a large finite coefficient ("fitted probabilities
numerically 0 or 1 occurred"). Checks: the observations Follicle finds separated are exactly
those R fits at 0 or 1; R's coefficient of the named covariate is large with the same sign;
R's other coefficients converge to Follicle's finite ones (the limit of the likelihood); the
supremum, likelihood-ratio test and profile-likelihood bound equal R's, computed from R fits of
the limit model and of offset models (``uniroot``). A sparse, not separated data set is left
alone and equals R's glm.
"""

import numpy as np
import pandas as pd
import pytest

from follicle.response.predictors import fit_logistic, univariable_screen
from follicle.response.separation import detect_separation
from rbridge import run_r

pytestmark = pytest.mark.r
REL = 1e-6


def _patients(seed: int, n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"ivmp": rng.integers(0, 2, n), "age": rng.normal(40, 12, n).round(1),
                      "female": rng.integers(0, 2, n)})
    lp = -0.3 + 0.02 * (d.age - 40) + 0.5 * d.female
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    return d


S1 = _patients(1).assign(y=lambda d: np.where(d.ivmp == 1, 1, d.y))  # every ivmp patient responds
S2 = _patients(2).assign(y=lambda d: np.where(d.ivmp == 1, 0, d.y))  # no ivmp patient responds
S3 = S1.copy()
S3.loc[S3.index[S3.ivmp == 1][0], "y"] = 0  # one ivmp non-responder: no separation
S4 = _patients(4).assign(marker=lambda d: d.age + np.where(d.y == 1, 100.0, 0.0))  # marker > threshold iff responder

R_CODE = r"""
ctl <- glm.control(epsilon = 1e-14, maxit = 200)
ll <- function(f) as.numeric(logLik(f))
for (nm in c("S1", "S2")) {
  d <- get(nm)
  f <- suppressWarnings(glm(y ~ ivmp + age + female, family = binomial, data = d, control = ctl))
  out(paste0(nm, "_full"), c(coef(f), sqrt(diag(vcov(f)))[3:4]))
  out(paste0(nm, "_fitted"), fitted(f))
  g <- glm(y ~ age + female, family = binomial, data = d[d$ivmp == 0, ], control = ctl)  # the limit model
  g0 <- glm(y ~ age + female, family = binomial, data = d, control = ctl)
  s <- if (nm == "S1") 1 else -1
  prof <- function(b) { d$off <- b * d$ivmp
    2 * (ll(g) - ll(glm(y ~ age + female + offset(off), family = binomial, data = d, start = coef(g),
                               control = ctl))) - qchisq(0.95, 1) }
  out(paste0(nm, "_limit"), c(coef(g), sqrt(diag(vcov(g))), ll(g), 1 - pchisq(2 * (ll(g) - ll(g0)), 1),
                              uniroot(prof, if (s > 0) c(-5, 8) else c(-8, 5), tol = 1e-12)$root))
}
f <- glm(y ~ ivmp + age + female, family = binomial, data = S3, control = ctl)
out("S3", c(coef(f), sqrt(diag(vcov(f)))))
f <- suppressWarnings(glm(y ~ marker + female, family = binomial, data = S4, control = ctl))
out("S4_fitted", fitted(f)); out("S4_coef", coef(f))
"""


@pytest.fixture(scope="module")
def ref(rscript):
    return run_r(rscript, R_CODE, {"S1": S1, "S2": S2, "S3": S3, "S4": S4})


def close(got, want, rel=REL):
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=rel, atol=1e-10)


@pytest.mark.parametrize("name, sign", [("S1", 1), ("S2", -1)])
def test_quasi_complete_separation_named_and_infinite(ref, name, sign):
    d = {"S1": S1, "S2": S2}[name]
    X = np.column_stack([np.ones(len(d)), d.ivmp, d.age, d.female])
    sep = detect_separation(X, d.y.to_numpy(float))
    fitted = np.asarray(ref[f"{name}_fitted"])
    r_sep = (fitted < 1e-8) | (fitted > 1 - 1e-8)
    assert np.array_equal(sep.separated, r_sep) and sep.separated.sum() == (d.ivmp == 1).sum()
    assert sep.infinite == {1: sign}
    res = fit_logistic(d, "y", ["ivmp", "age", "female"], cv_folds=0)
    t = res.terms.set_index("term")
    assert t.loc["ivmp", "coef"] == sign * np.inf and t.loc["ivmp", "or"] == (np.inf if sign > 0 else 0.0)
    assert "covariate 'ivmp': quasi-complete separation" in res.infinite["ivmp"]
    assert any(w.startswith("covariate 'ivmp'") for w in res.warnings)
    full = ref[f"{name}_full"]
    assert np.sign(full[1]) == sign and abs(full[1]) > 15  # R: a large finite number
    close(t.loc[["age", "female"], "coef"], full[2:4], rel=1e-6)  # R's other coefficients reach the limit
    close(t.loc[["age", "female"], "se"], full[4:6], rel=1e-5)
    lim = ref[f"{name}_limit"]  # R's limit model: intercept, age, female, their SEs, loglik, LR p, profile end
    close(t.loc[["(Intercept)", "age", "female"], "coef"], lim[0:3])
    close(t.loc[["(Intercept)", "age", "female"], "se"], lim[3:6])
    close(t.loc["ivmp", "p"], lim[7])
    bound = np.exp(lim[8])
    if sign > 0:
        assert t.loc["ivmp", "ci_high"] == np.inf and t.loc["ivmp", "ci_low"] == pytest.approx(bound, rel=REL)
    else:
        assert t.loc["ivmp", "ci_low"] == 0.0 and t.loc["ivmp", "ci_high"] == pytest.approx(bound, rel=REL)


def test_firth_when_asked_names_the_covariate():
    res = fit_logistic(S1, "y", ["ivmp", "age", "female"], firth=True, cv_folds=0)
    assert np.isfinite(res.terms.set_index("term").loc["ivmp", "coef"]) and res.infinite == {}
    assert any("covariate 'ivmp'" in w and "Firth" in w for w in res.warnings)
    scr = univariable_screen(S1, "y", ["ivmp", "age"])
    assert scr.set_index("predictor").loc["ivmp", "coef"] == np.inf


def test_sparse_but_not_separated_is_ordinary_ml(ref):
    res = fit_logistic(S3, "y", ["ivmp", "age", "female"], cv_folds=0)
    assert res.infinite == {} and not any("separation" in w for w in res.warnings)
    close(list(res.terms.coef) + list(res.terms.se), ref["S3"])


def test_complete_separation_by_a_continuous_marker(ref):
    X = np.column_stack([np.ones(len(S4)), S4.marker, S4.female])
    sep = detect_separation(X, S4.y.to_numpy(float))
    fitted = np.asarray(ref["S4_fitted"])
    assert sep.separated.all() and (((fitted < 1e-8) | (fitted > 1 - 1e-8)).all())
    assert sep.infinite[1] == 1 and sep.infinite[0] == -1  # marker up, intercept down, as R's signs
    r = ref["S4_coef"]
    assert r[1] > 0 and r[0] < 0
    res = fit_logistic(S4, "y", ["marker", "female"], cv_folds=0)
    assert "complete separation" in res.infinite["marker"]
