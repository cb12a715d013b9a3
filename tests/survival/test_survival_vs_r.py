"""Differential tests against R's survival package on data the tests generate (1e-6 relative).

One R run (module fixture) computes every reference: coxph (Efron and Breslow, heavy ties,
cluster-robust, strata, case weights), survfit (log-log CIs, medians), survdiff (plain,
3 groups, stratified) and cox.zph (transform "km", per term and global).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from follicle.survival.cox import CoxPH, fit_outcome_model
from follicle.survival.followup import followup_summary
from follicle.survival.kaplan_meier import kaplan_meier, kaplan_meier_by_group
from follicle.survival.logrank import logrank_test
from follicle.survival.rates import incidence_rates, rate_ratio
from follicle.survival.risks import risk_comparison
from follicle.survival.zph import cox_zph
from rbridge import run_r
from survdata import matched_cohort

pytestmark = pytest.mark.r
REL = 1e-6

R_CODE = r"""
library(survival)
nn <- function(x) ifelse(is.na(x), NaN, x)
ctl <- coxph.control(eps = 1e-12, iter.max = 100)
for (ties in c("efron", "breslow")) {
  f <- coxph(Surv(time, event) ~ treat + age + sex, data = d, ties = ties, control = ctl)
  out(paste0(ties, "_coef"), coef(f)); out(paste0(ties, "_se"), sqrt(diag(vcov(f))))
  out(paste0(ties, "_loglik"), f$loglik)
  z <- cox.zph(f, transform = "km")
  out(paste0(ties, "_zph_chisq"), z$table[, "chisq"]); out(paste0(ties, "_zph_p"), z$table[, "p"])
  f <- coxph(Surv(time, event) ~ treat + age + strata(sex), data = d, ties = ties, control = ctl)
  out(paste0(ties, "_st_coef"), coef(f)); out(paste0(ties, "_st_se"), sqrt(diag(vcov(f))))
  z <- cox.zph(f, transform = "km")
  out(paste0(ties, "_st_zph_chisq"), z$table[, "chisq"])
  f <- coxph(Surv(time, event) ~ treat, data = d, ties = ties, cluster = pair, control = ctl)
  out(paste0(ties, "_cl_coef"), coef(f)); out(paste0(ties, "_cl_se"), sqrt(diag(f$var)))
  out(paste0(ties, "_cl_naive"), sqrt(diag(f$naive.var)))
  f <- coxph(Surv(time, event) ~ treat + age, data = d, ties = ties, robust = TRUE, control = ctl)
  out(paste0(ties, "_rob_se"), sqrt(diag(f$var)))
  f <- coxph(Surv(time, event) ~ treat + strata(pair), data = d, ties = ties, control = ctl)
  out(paste0(ties, "_pair_coef"), coef(f)); out(paste0(ties, "_pair_se"), sqrt(diag(vcov(f))))
  f <- coxph(Surv(time, event) ~ treat + strata(pair), cluster = pair, data = d, ties = ties, control = ctl)
  out(paste0(ties, "_pairrob_se"), sqrt(diag(f$var)))
  f <- coxph(Surv(time, event) ~ treat + age, weights = w, robust = TRUE, data = d, ties = ties, control = ctl)
  out(paste0(ties, "_w_coef"), coef(f)); out(paste0(ties, "_w_se"), sqrt(diag(f$var)))
  f <- coxph(Surv(time, event) ~ treat, weights = w, cluster = pair, data = d, ties = ties, control = ctl)
  out(paste0(ties, "_w1_coef"), coef(f)); out(paste0(ties, "_w1_se"), sqrt(diag(f$var)))
  f <- coxph(Surv(time, event) ~ treat, data = d, ties = ties, control = ctl)
  z <- cox.zph(f, transform = "km")
  out(paste0(ties, "_t_zph"), c(z$table[, "chisq"], z$table[, "p"]))
}
km <- survfit(Surv(time, event) ~ 1, data = d, conf.type = "log-log")
out("km_time", km$time); out("km_nrisk", km$n.risk); out("km_nevent", km$n.event)
out("km_surv", km$surv); out("km_se", nn(km$std.err)); out("km_low", nn(km$lower)); out("km_high", nn(km$upper))
out("km_median", nn(summary(km)$table[c("median", "0.95LCL", "0.95UCL")]))
kg <- survfit(Surv(time, event) ~ treat, data = d, conf.type = "log-log")
tab <- summary(kg)$table
out("kg_median", nn(c(tab[, "median"], tab[, "0.95LCL"], tab[, "0.95UCL"])))
s1 <- kg[2]
out("kg1_surv", s1$surv); out("kg1_low", nn(s1$lower)); out("kg1_high", nn(s1$upper)); out("kg1_time", s1$time)
for (ct in c("log", "plain")) {
  k2 <- survfit(Surv(time, event) ~ 1, data = d, conf.type = ct)
  out(paste0("km_", ct), nn(c(k2$lower, k2$upper)))
}
ff <- coxph(Surv(time, event) ~ factor(grp3) + age, data = d)
zf <- cox.zph(ff)
out("zph_factor", c(zf$table[, "chisq"], zf$table[, "df"]))
fw <- coxph(Surv(time, event) ~ treat + age, weights = w, data = d)
out("zph_w", cox.zph(fw)$table[, "chisq"])
flat <- survfit(Surv(time, event) ~ 1, data = data.frame(time = 1:10, event = 1), conf.type = "log-log")
out("flat_median", nn(summary(flat)$table[c("median", "0.95LCL", "0.95UCL")]))
ends <- survfit(Surv(time, event) ~ 1, data = data.frame(time = c(1, 2, 3, 4), event = c(1, 1, 0, 0)))
out("ends_median", nn(summary(ends)$table[c("median", "0.95LCL", "0.95UCL")]))
out("lr2", survdiff(Surv(time, event) ~ treat, data = d)$chisq)
out("lr3", survdiff(Surv(time, event) ~ grp3, data = d)$chisq)
out("lrst", survdiff(Surv(time, event) ~ treat + strata(sex), data = d)$chisq)
sk <- summary(kg, times = 8)
out("kmw_surv", sk$surv); out("kmw_se", sk$std.err); out("kmw_low", sk$lower); out("kmw_high", sk$upper)
pt <- poisson.test(c(d1, d0), c(t1, t0)); out("rr_pois", c(pt$estimate, pt$conf.int, pt$p.value))
rk <- survfit(Surv(time, 1 - event) ~ 1, data = d)
out("fu_median", nn(summary(rk)$table[c("median", "0.95LCL", "0.95UCL")]))
"""


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return matched_cohort()


@pytest.fixture(scope="module")
def ref(rscript: str, data: pd.DataFrame) -> dict[str, list[float]]:
    py = data.groupby("treat")["time"].sum()
    ev = data.groupby("treat")["event"].sum()
    head = f"d1 <- {int(ev[1])}; d0 <- {int(ev[0])}; t1 <- {float(py[1])!r}; t0 <- {float(py[0])!r}\n"
    return run_r(rscript, head + R_CODE, {"d": data})


def close(got, want) -> None:
    assert np.atleast_1d(np.asarray(got, dtype=float)) == pytest.approx(np.asarray(want, dtype=float), rel=REL, nan_ok=True)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_coefficients_and_se_heavy_ties(data, ref, ties):
    assert data["time"].nunique() < 20  # heavy ties: ~300 subjects on <20 distinct times
    m = CoxPH(ties=ties).fit(data[["treat", "age", "sex"]], data["time"], data["event"])
    close(m.coef_, ref[f"{ties}_coef"])
    close(m.se_, ref[f"{ties}_se"])
    close([m.loglik_null_, m.loglik_], ref[f"{ties}_loglik"])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_stratified(data, ref, ties):
    m = CoxPH(ties=ties).fit(data[["treat", "age"]], data["time"], data["event"], strata=data["sex"])
    close(m.coef_, ref[f"{ties}_st_coef"])
    close(m.se_, ref[f"{ties}_st_se"])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_robust_clustered_on_pair(data, ref, ties):
    res = fit_outcome_model(data["time"], data["event"], data["treat"], ties=ties, robust_se=True, pair_id=data["pair"])
    close(res.coef, ref[f"{ties}_cl_coef"])
    close(res.se, ref[f"{ties}_cl_se"])
    close(np.sqrt(np.diag(res.naive_var)), ref[f"{ties}_cl_naive"])
    assert res.robust


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_robust_per_subject(data, ref, ties):
    m = CoxPH(ties=ties, robust=True).fit(data[["treat", "age"]], data["time"], data["event"])
    close(m.se_, ref[f"{ties}_rob_se"])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_stratified_by_pair(data, ref, ties):
    res = fit_outcome_model(data["time"], data["event"], data["treat"], ties=ties, robust_se=False,
                            stratify_by_pair=True, pair_id=data["pair"])
    close(res.coef, ref[f"{ties}_pair_coef"])
    close(res.se, ref[f"{ties}_pair_se"])
    rob = fit_outcome_model(data["time"], data["event"], data["treat"], ties=ties, robust_se=True,
                            stratify_by_pair=True, pair_id=data["pair"])
    close(rob.se, ref[f"{ties}_pairrob_se"])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_case_weights_robust(data, ref, ties):
    m = CoxPH(ties=ties, robust=True).fit(data[["treat", "age"]], data["time"], data["event"], weights=data["w"])
    close(m.coef_, ref[f"{ties}_w_coef"])
    close(m.se_, ref[f"{ties}_w_se"])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_zph_km(data, ref, ties):
    X = data[["treat", "age", "sex"]]
    m = CoxPH(ties=ties).fit(X, data["time"], data["event"])
    z = cox_zph(m, X, data["time"], data["event"])
    assert list(z.table.index) == ["treat", "age", "sex", "GLOBAL"]
    close(z.table["chisq"], ref[f"{ties}_zph_chisq"])
    close(z.table["p"], ref[f"{ties}_zph_p"])
    Xs = data[["treat", "age"]]
    ms = CoxPH(ties=ties).fit(Xs, data["time"], data["event"], strata=data["sex"])
    zs = cox_zph(ms, Xs, data["time"], data["event"], strata=data["sex"])
    close(zs.table["chisq"], ref[f"{ties}_st_zph_chisq"])


def test_kaplan_meier_table_and_loglog_ci(data, ref):
    km = kaplan_meier(data["time"], data["event"])
    tab = km.table
    close(tab["time"], ref["km_time"])
    close(tab["n_risk"], ref["km_nrisk"])
    close(tab["n_event"], ref["km_nevent"])
    close(tab["survival"], ref["km_surv"])
    close(tab["std_err"], ref["km_se"])
    close(tab["ci_low"], ref["km_low"])
    close(tab["ci_high"], ref["km_high"])
    close([km.median, km.median_ci_low, km.median_ci_high], ref["km_median"])


def test_kaplan_meier_by_group(data, ref):
    curves = kaplan_meier_by_group(data["time"], data["event"], data["treat"])
    med = [curves[k].median for k in (0, 1)] + [curves[k].median_ci_low for k in (0, 1)]
    med += [curves[k].median_ci_high for k in (0, 1)]
    close(med, ref["kg_median"])
    tab = curves[1].table
    close(tab["time"], ref["kg1_time"])
    close(tab["survival"], ref["kg1_surv"])
    close(tab["ci_low"], ref["kg1_low"])
    close(tab["ci_high"], ref["kg1_high"])


def test_median_where_curve_is_flat_at_one_half(ref):
    km = kaplan_meier(np.arange(1, 11), np.ones(10))
    assert km.median == 5.5  # S = 0.5 on [5, 6): R reports the midpoint
    close([km.median, km.median_ci_low, km.median_ci_high], ref["flat_median"])


def test_median_where_curve_ends_at_one_half(ref):
    km = kaplan_meier([1.0, 2, 3, 4], [1, 1, 0, 0])
    assert km.survival[-1] == 0.5
    close([km.median, km.median_ci_low, km.median_ci_high], ref["ends_median"])


def test_logrank_chisq(data, ref):
    close(logrank_test(data["time"], data["event"], data["treat"]).chisq, ref["lr2"])
    res3 = logrank_test(data["time"], data["event"], data["grp3"])
    close(res3.chisq, ref["lr3"])
    assert res3.df == 2
    close(logrank_test(data["time"], data["event"], data["treat"], strata=data["sex"]).chisq, ref["lrst"])


def test_reverse_km_median_followup(data, ref):
    fu = followup_summary(data["time"], data["event"])
    close([fu.median_reverse_km, fu.median_reverse_km_ci_low, fu.median_reverse_km_ci_high], ref["fu_median"])


def test_km_risk_at_window_end(data, ref):
    res = risk_comparison(data["time"], data["event"], data["treat"], window=8, estimator="km")
    arms = [res.comparator, res.treated]  # R orders strata treat=0, treat=1
    close([1 - a.risk for a in arms], ref["kmw_surv"])
    close([np.sqrt(a.variance) for a in arms], ref["kmw_se"])
    close([1 - a.ci_high for a in arms], ref["kmw_low"])
    close([1 - a.ci_low for a in arms], ref["kmw_high"])
    assert res.rd == pytest.approx(arms[1].risk - arms[0].risk, rel=1e-12)


def test_rate_ratio_exact_matches_poisson_test(data, ref):
    rates = incidence_rates(data["time"], data["event"], data["treat"], time_unit="years", per=1.0)
    r0, r1 = rates.iloc[0], rates.iloc[1]
    rr = rate_ratio(int(r1.events), r1.person_years, int(r0.events), r0.person_years)
    close([rr.rate_ratio, rr.ci_low, rr.ci_high, rr.p], ref["rr_pois"])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_single_binary_treatment_paths(data, ref, ties):
    # one binary covariate: the collapsed fast kernel (zph) and the weighted binary kernel (IPW)
    m = CoxPH(ties=ties).fit(data[["treat"]], data["time"], data["event"])
    z = cox_zph(m, data[["treat"]], data["time"], data["event"])
    close(np.r_[z.table["chisq"], z.table["p"]], ref[f"{ties}_t_zph"])
    res = fit_outcome_model(data["time"], data["event"], data["treat"], ties=ties, weights=data["w"],
                            pair_id=data["pair"])
    close(res.coef, ref[f"{ties}_w1_coef"])
    close(res.se, ref[f"{ties}_w1_se"])


def test_kaplan_meier_log_and_plain_ci(data, ref):
    for conf_type in ("log", "plain"):
        km = kaplan_meier(data["time"], data["event"], conf_type=conf_type)
        close(np.r_[km.table["ci_low"], km.table["ci_high"]], ref[f"km_{conf_type}"])


def test_cox_zph_with_case_weights(data, ref):
    X = data[["treat", "age"]]
    m = CoxPH().fit(X, data["time"], data["event"], weights=data["w"])
    close(cox_zph(m, X, data["time"], data["event"], weights=data["w"]).table["chisq"], ref["zph_w"])


def test_cox_zph_multi_column_term(data, ref):
    # a 3-level factor is one term with 2 df, as R's cox.zph(terms = TRUE)
    X = pd.DataFrame({"g1": (data["grp3"] == 1).astype(float), "g2": (data["grp3"] == 2).astype(float),
                      "age": data["age"]})
    m = CoxPH().fit(X, data["time"], data["event"])
    z = cox_zph(m, X, data["time"], data["event"], terms={"grp3": [0, 1], "age": [2]})
    close(np.r_[z.table["chisq"], z.table["df"]], ref["zph_factor"])
