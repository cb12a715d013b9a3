"""Kaplan-Meier and log-rank: properties (hypothesis), lifelines as a peer, numbers at risk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test as ll_logrank

from follicle.survival import kaplan_meier, kaplan_meier_by_group, logrank_test, numbers_at_risk
from survdata import matched_cohort

times = st.lists(st.integers(0, 30), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(times, st.data())
def test_km_monotone_and_within_unit_interval(ts, data):
    events = data.draw(st.lists(st.integers(0, 1), min_size=len(ts), max_size=len(ts)))
    km = kaplan_meier(np.array(ts, float), np.array(events))
    s = km.table["survival"].to_numpy()
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s) <= 0)
    low, high = km.table["ci_low"].to_numpy(), km.table["ci_high"].to_numpy()
    ok = ~np.isnan(low)
    assert np.all((low[ok] <= s[ok] + 1e-12) & (s[ok] <= high[ok] + 1e-12))
    assert km.table["n_risk"].iloc[0] == len(ts)
    assert km.events == sum(events)


@settings(max_examples=40, deadline=None)
@given(times, st.data())
def test_logrank_symmetric_in_group_labels(ts, data):
    n = len(ts)
    events = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    groups = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    if len(set(groups)) < 2 or events.sum() == 0:
        return
    a = logrank_test(np.array(ts, float), events, groups)
    b = logrank_test(np.array(ts, float), events, 1 - groups)
    assert a.chisq == pytest.approx(b.chisq, rel=1e-9, abs=1e-12)
    assert a.chisq >= -1e-12
    assert a.table["observed"].sum() == pytest.approx(a.table["expected"].sum())


def test_km_and_logrank_match_lifelines():
    d = matched_cohort(seed=21, n_pairs=300, tie_scale=0.5)
    km = kaplan_meier(d["time"], d["event"])
    ref = KaplanMeierFitter().fit(d["time"], d["event"])
    ours = km.survival_at(ref.survival_function_.index.to_numpy())
    assert ours == pytest.approx(ref.survival_function_["KM_estimate"].to_numpy(), rel=1e-12)
    assert km.median == pytest.approx(ref.median_survival_time_)
    t, c = d[d.treat == 1], d[d.treat == 0]
    lr = ll_logrank(t["time"], c["time"], t["event"], c["event"])
    assert logrank_test(d["time"], d["event"], d["treat"]).chisq == pytest.approx(lr.test_statistic, rel=1e-9)


def test_numbers_at_risk_table():
    d = matched_cohort(seed=4)
    curves = kaplan_meier_by_group(d["time"], d["event"], d["treat"])
    tab = numbers_at_risk(curves, [0, 5, 10])
    for arm in (0, 1):
        sub = d[d.treat == arm]
        assert tab.loc[arm].tolist() == [int((sub.time >= t).sum()) for t in (0, 5, 10)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 500).map(float), st.floats(0, 500, allow_nan=False)), min_size=1, max_size=80))
def test_distinct_times_equals_numpy_unique(values):
    from follicle.survival._risktable import distinct_times

    t = np.array(values, dtype=float)
    times, inv = distinct_times(t)
    ref_times, ref_inv = np.unique(t, return_inverse=True)
    assert np.array_equal(times, ref_times) and np.array_equal(inv, ref_inv.reshape(-1))
