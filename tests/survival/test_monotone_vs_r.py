"""Monotone partial likelihood (no events in a group; a covariate that orders the events) vs R's survival.

R's ``coxph`` stops at a large finite coefficient and warns "Loglik converged before variable j;
coefficient may be infinite". Follicle must flag the same variable as infinite (with a message
naming it), report the same finite coefficients, the same supremum of the log partial
likelihood, and likelihood-based inference R computes here independently: the likelihood-ratio
test and the finite end of the profile-likelihood interval (R: ``uniroot`` over fits with the
coefficient as an offset). A sparse but non-monotone data set checks that nothing is flagged
falsely. Tolerance 1e-6 relative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from follicle.survival.cox import CoxPH, fit_outcome_model
from rbridge import run_r

pytestmark = pytest.mark.r
REL = 1e-6


def _data(seed: int, n: int = 160) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treat = np.tile([1, 0], n // 2)
    age = np.round(rng.normal(50, 10, n), 1)
    time = np.round(rng.exponential(200, n) * np.exp(-0.02 * (age - 50))) + 1
    event = (rng.random(n) < 0.7).astype(int)
    return pd.DataFrame({"time": time, "event": event, "treat": treat, "age": age, "pair": np.repeat(np.arange(n // 2), 2),
                         "w": np.round(rng.uniform(0.5, 2.0, n), 3)})


D0 = _data(7).assign(event=lambda d: d.event * (d.treat == 0))  # no events among the treated
D1 = _data(8).assign(event=lambda d: d.event * (d.treat == 1))  # no events among the controls
# an ordinal score 0-3 with events only at score 3: every event has the largest score in its risk set
D2 = _data(9).assign(x=lambda d: (np.arange(len(d)) // 2) % 4).assign(event=lambda d: d.event * (d.x == 3))
D3 = _data(10).assign(event=lambda d: np.where((d.treat == 1) & (d.index > 2), 0, d.event))  # 1 treated event: finite
D3.loc[1, ["treat", "event"]] = [1, 1]

R_CODE = r"""
library(survival)
ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 200)
fitw <- function(expr) {
  w <- character(0)
  f <- withCallingHandlers(expr, warning = function(m) { w <<- c(w, conditionMessage(m)); invokeRestart("muffleWarning") })
  hit <- regmatches(w, regexpr("before variable +[0-9 ,]+", w))
  vars <- if (length(hit)) as.numeric(strsplit(trimws(sub("before variable +", "", hit)), " *, *")[[1]]) else 0
  list(f = f, vars = vars)
}
lastll <- function(f) f$loglik[length(f$loglik)]
# profile end: 2 (sup - max ll with coef of `v` fixed at b) = qchisq(.95, 1), found by uniroot
prof_end <- function(d, rhs, v, sup, ties, lo, hi, strat = NULL) {
  g <- function(b) {
    d$off <- b * d[[v]]
    fo <- as.formula(paste("Surv(time, event) ~", rhs, "+ offset(off)"))
    2 * (sup - lastll(coxph(fo, data = d, ties = ties, control = ctl))) - qchisq(0.95, 1)
  }
  uniroot(g, c(lo, hi), tol = 1e-12)$root
}
for (ties in c("efron", "breslow")) {
  r <- fitw(coxph(Surv(time, event) ~ treat, data = D0, ties = ties, control = ctl))
  out(paste0("d0_", ties), c(r$vars, r$f$loglik, 1 - pchisq(2 * diff(r$f$loglik), 1)))
  out(paste0("d0_", ties, "_prof"), prof_end(D0, "1", "treat", r$f$loglik[2], ties, -10, 10))
  r <- fitw(coxph(Surv(time, event) ~ treat + age, data = D0, ties = ties, control = ctl))
  f0 <- coxph(Surv(time, event) ~ age, data = D0, ties = ties, control = ctl)
  out(paste0("d0a_", ties), c(r$vars, coef(r$f)[2], sqrt(r$f$var[2, 2]), r$f$loglik[2],
                              1 - pchisq(2 * (r$f$loglik[2] - f0$loglik[2]), 1)))
  out(paste0("d0a_", ties, "_prof"), prof_end(D0, "age", "treat", r$f$loglik[2], ties, -10, 10))
}
r <- fitw(coxph(Surv(time, event) ~ treat + strata(pair), cluster = pair, data = D0, control = ctl))
out("d0p", c(coef(r$f), r$f$loglik[2]))
r <- fitw(coxph(Surv(time, event) ~ treat + age, weights = w, robust = TRUE, data = D1, control = ctl))
out("d1w", c(r$vars, coef(r$f)[2], sqrt(r$f$var[2, 2]), r$f$loglik[2]))
r <- fitw(coxph(Surv(time, event) ~ treat, data = D1, control = ctl))
out("d1", c(r$vars, r$f$loglik[2]))
out("d1_prof", prof_end(D1, "1", "treat", r$f$loglik[2], "efron", -10, 10))
r <- fitw(coxph(Surv(time, event) ~ x + treat, data = D2, control = ctl))
out("d2", c(r$vars, coef(r$f)[2], sqrt(r$f$var[2, 2]), r$f$loglik[2]))
r <- fitw(coxph(Surv(time, event) ~ treat + age, data = D3, control = ctl))
out("d3", c(r$vars, coef(r$f), sqrt(diag(r$f$var)), r$f$loglik[2]))
"""


@pytest.fixture(scope="module")
def ref(rscript):
    return run_r(rscript, R_CODE, {"D0": D0, "D1": D1, "D2": D2, "D3": D3})


def close(got, want, rel=REL):
    assert np.asarray(got, float) == pytest.approx(np.asarray(want, float), rel=rel, abs=1e-10)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_no_events_in_treated_is_minus_infinity_named(ref, ties):
    r = ref[f"d0_{ties}"]
    assert r[0] == 1  # R: "Loglik converged before variable 1"
    m = CoxPH(ties=ties).fit(D0[["treat"]], D0.time, D0.event)
    row = m.summary_.loc["treat"]
    assert row.coef == -np.inf and row.hr == 0 and np.isnan(row.se)
    assert "covariate 'treat'" in m.infinite_["treat"] and "-inf" in m.infinite_["treat"]
    assert "0 of" in m.infinite_["treat"] and m.warnings_ == (m.infinite_["treat"],)
    close([m.loglik_null_, m.loglik_], r[1:3])
    close(row.p, r[3])  # likelihood-ratio test, as R's logtest
    assert row.ci_low == 0 and row.ci_high == pytest.approx(np.exp(ref[f"d0_{ties}_prof"][0]), rel=REL)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_infinite_with_a_finite_covariate(ref, ties):
    vars_, age, age_se, ll, lr_p = ref[f"d0a_{ties}"]
    assert vars_ == 1
    m = CoxPH(ties=ties).fit(D0[["treat", "age"]], D0.time, D0.event)
    assert list(m.infinite_) == ["treat"] and m.coef_[0] == -np.inf
    close([m.coef_[1], m.se_[1], m.loglik_], [age, age_se, ll])
    s = m.summary_.loc["treat"]
    close([s.p, np.log(s.ci_high)], [lr_p, ref[f"d0a_{ties}_prof"][0]])
    d = 2 * (m.loglik_ - CoxPH(ties=ties).fit(D0[["age"]], D0.time, D0.event).loglik_)
    assert s.p == pytest.approx(stats.chi2.sf(d, 1), rel=1e-12)


def test_outcome_model_pair_stratified_and_robust(ref):
    coef, ll = ref["d0p"]
    assert coef < -100  # R runs out of iterations on its way to -inf; the supremum is 0 (every term -> 0)
    res = fit_outcome_model(D0.time, D0.event, D0.treat.to_numpy(), stratify_by_pair=True, pair_id=D0.pair)
    assert res.summary.loc["treatment", "coef"] == -np.inf and list(res.infinite) == ["treatment"]
    assert res.loglik == 0.0 and ll == pytest.approx(0.0, abs=1e-8)
    assert res.to_dict()["infinite"]["treatment"].startswith("-inf: covariate 'treatment'")


def test_no_events_in_controls_weighted_robust(ref):
    vars_, age, age_se, ll = ref["d1w"]
    assert vars_ == 1
    m = CoxPH(robust=True).fit(D1[["treat", "age"]], D1.time, D1.event, weights=D1.w)
    assert m.coef_[0] == np.inf and m.summary_.loc["treat", "hr"] == np.inf
    close([m.coef_[1], m.se_[1], m.loglik_], [age, age_se, ll])
    vars1, ll1 = ref["d1"]
    m1 = CoxPH().fit(D1[["treat"]], D1.time, D1.event)
    close(m1.loglik_, ll1)
    s = m1.summary_.loc["treat"]
    assert s.ci_high == np.inf and np.log(s.ci_low) == pytest.approx(ref["d1_prof"][0], rel=REL)


def test_ordinal_covariate_ordering_the_events(ref):
    vars_, treat, treat_se, ll = ref["d2"]
    assert vars_ == 1
    m = CoxPH().fit(D2[["x", "treat"]], D2.time, D2.event)
    assert list(m.infinite_) == ["x"] and m.coef_[0] == np.inf
    assert "every event has the largest x in its risk set" in m.infinite_["x"]
    close([m.coef_[1], m.se_[1], m.loglik_], [treat, treat_se, ll])


def test_sparse_but_finite_is_not_flagged(ref):
    r = ref["d3"]
    assert r[0] == 0  # R converges without a warning
    m = CoxPH().fit(D3[["treat", "age"]], D3.time, D3.event)
    assert m.infinite_ == {} and m.warnings_ == ()
    close(list(m.coef_) + list(m.se_) + [m.loglik_], r[1:])
