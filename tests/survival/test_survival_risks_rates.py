"""Risks per arm (crude, KM), RD/RR/OR against statsmodels; incidence rates and follow-up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from follicle.survival import followup_by_group, incidence_rates, kaplan_meier, risk_comparison
from survdata import matched_cohort


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return matched_cohort(seed=17, n_pairs=200)


def test_crude_risks_match_statsmodels(data):
    window = 6.0
    res = risk_comparison(data["time"], data["event"], data["treat"], window=window)
    assert res.estimator == "crude"
    hit = (data["event"] == 1) & (data["time"] <= window)
    a, n1 = int(hit[data.treat == 1].sum()), int((data.treat == 1).sum())
    c, n0 = int(hit[data.treat == 0].sum()), int((data.treat == 0).sum())
    assert (res.treated.events, res.treated.n, res.comparator.events, res.comparator.n) == (a, n1, c, n0)
    assert res.treated.risk == a / n1
    assert (res.treated.ci_low, res.treated.ci_high) == pytest.approx(proportion_confint(a, n1, method="beta"), rel=1e-9)
    tab = Table2x2(np.array([[a, n1 - a], [c, n0 - c]]))
    assert res.rr == pytest.approx(tab.riskratio, rel=1e-12)
    assert (res.rr_ci_low, res.rr_ci_high) == pytest.approx(tab.riskratio_confint(), rel=1e-9)
    assert res.or_ == pytest.approx(tab.oddsratio, rel=1e-12)
    assert (res.or_ci_low, res.or_ci_high) == pytest.approx(tab.oddsratio_confint(), rel=1e-9)
    rd_ci = confint_proportions_2indep(a, n1, c, n0, method="wald", compare="diff")
    assert res.rd == pytest.approx(a / n1 - c / n0, rel=1e-12)
    assert (res.rd_ci_low, res.rd_ci_high) == pytest.approx(rd_ci, rel=1e-9)
    frame = res.to_frame()
    assert list(frame.index) == ["rd", "rr", "or"] and list(frame.columns) == ["estimate", "ci_low", "ci_high"]


def test_km_risk_accounts_for_censoring(data):
    window = 6.0
    res = risk_comparison(data["time"], data["event"], data["treat"], window=window, estimator="km")
    crude = risk_comparison(data["time"], data["event"], data["treat"], window=window)
    km1 = kaplan_meier(data["time"][data.treat == 1], data["event"][data.treat == 1])
    assert res.treated.risk == pytest.approx(1 - km1.survival_at([window])[0], rel=1e-12)
    # censoring before the window end: KM risk exceeds the crude events / n
    assert res.treated.risk > crude.treated.risk and res.comparator.risk > crude.comparator.risk
    assert res.rd_ci_low < res.rd < res.rd_ci_high and res.rr_ci_low < res.rr < res.rr_ci_high


def test_zero_events_in_an_arm_gives_undefined_ratio_ci():
    t = np.arange(1.0, 21.0)
    arm = np.tile([1, 0], 10)
    event = (arm == 0).astype(int)
    res = risk_comparison(t, event, arm)
    assert res.rr == 0 and np.isnan(res.rr_ci_low) and np.isnan(res.or_ci_high)
    assert res.treated.ci_low == 0.0


def test_incidence_rates_per_group(data):
    rates = incidence_rates(data["time"], data["event"], data["treat"], time_unit="days", per=1000)
    sub = data[data.treat == 1]
    row = rates.set_index("group").loc[1]
    assert row.person_years == pytest.approx(sub.time.sum() / 365.25)
    assert row.rate == pytest.approx(sub.event.sum() / (sub.time.sum() / 365.25) * 1000)
    assert row.ci_low < row.rate < row.ci_high
    per100 = incidence_rates(data["time"], data["event"], time_unit="days", per=100)
    assert per100.loc[0, "rate"] * 10 == pytest.approx(
        incidence_rates(data["time"], data["event"], time_unit="days", per=1000).loc[0, "rate"])


def test_followup_by_group(data):
    fu = followup_by_group(data["time"], data["event"], data["treat"])
    sub = data[data.treat == 0]
    assert fu.loc[0, "mean"] == pytest.approx(sub.time.mean())
    assert fu.loc[0, "median"] == pytest.approx(sub.time.median())
    assert fu.loc[0, "person_time"] == pytest.approx(sub.time.sum())
    # potential follow-up (reverse KM) is at least the observed median here, as events shorten follow-up
    assert fu.loc[0, "median_reverse_km"] >= fu.loc[0, "median"]
