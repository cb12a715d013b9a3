"""Standardised mean differences (Austin 2009; Austin & Stuart 2015) against hand formulas,
and IPT weights, stratification and balance after matching on a confounded simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from follicle.causal import (
    balance_table,
    effective_sample_size,
    fit_propensity,
    ipw_weights,
    match,
    smd,
    strata_table,
    stratify,
    stratum_weights,
)
from follicle.errors import InputError


def test_unweighted_smd_hand_formulas():
    x = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 9.0])
    b = np.array([1, 0, 1, 1, 0, 0])
    t = np.array([1, 1, 1, 0, 0, 0])
    # continuous: (m1 - m0) / sqrt((s1^2 + s0^2) / 2), sample variances
    m1, m0 = np.mean(x[:3]), np.mean(x[3:])
    s1, s0 = np.var(x[:3], ddof=1), np.var(x[3:], ddof=1)
    # binary: (p1 - p0) / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2)
    p1, p0 = 2 / 3, 1 / 3
    got = smd(np.column_stack([x, b]), t)
    assert got[0] == pytest.approx((m1 - m0) / np.sqrt((s1 + s0) / 2), rel=1e-12)
    assert got[1] == pytest.approx((p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2), rel=1e-12)


def test_weighted_smd_hand_formula():
    rng = np.random.default_rng(0)
    n = 50
    x = rng.normal(size=n)
    b = (rng.random(n) < 0.4).astype(float)
    t = rng.random(n) < 0.5
    w = rng.uniform(0.2, 3.0, n)

    def wstats(v, ww):
        m = np.sum(ww * v) / np.sum(ww)
        var = np.sum(ww) / (np.sum(ww) ** 2 - np.sum(ww ** 2)) * np.sum(ww * (v - m) ** 2)
        return m, var

    m1, v1 = wstats(x[t], w[t])
    m0, v0 = wstats(x[~t], w[~t])
    p1, _ = wstats(b[t], w[t])
    p0, _ = wstats(b[~t], w[~t])
    got = smd(pd.DataFrame({"x": x, "b": b}), t.astype(int), w)
    assert got[0] == pytest.approx((m1 - m0) / np.sqrt((v1 + v0) / 2), rel=1e-10)
    assert got[1] == pytest.approx((p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2), rel=1e-10)
    # zero weights drop units: same as subsetting
    w0 = np.where(np.arange(n) < 10, 0.0, 1.0)
    keep = np.arange(n) >= 10
    np.testing.assert_allclose(smd(np.c_[x, b], t, w0), smd(np.c_[x, b][keep], t[keep]), rtol=1e-12)


def _confounded(n=20000, seed=1):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.normal(50, 10, n), "severe": (rng.random(n) < 0.3).astype(int)})
    t = (rng.random(n) < expit(-3 + 0.05 * X.age + 1.0 * X.severe)).astype(int)
    return X, t


def test_balance_after_matching_and_weighting_passes():
    X, t = _confounded()
    model = fit_propensity(X, t)
    res = match(model.ps_, t, caliper=0.1, order="closest")
    tab = balance_table(X, t, weights_after=res.weights())
    assert list(tab.columns) == ["covariate", "smd_before", "smd_after", "status"]
    assert (tab.smd_before.abs() > 0.2).all()
    assert (tab.status == "PASS").all() and (tab.smd_after.abs() < 0.05).all()
    # the "after" SMD equals the unweighted SMD of the matched subset
    idx = res.index()
    np.testing.assert_allclose(tab.smd_after, smd(X.iloc[idx], t[idx]), rtol=1e-12)
    for estimand in ("ate", "att"):
        w = ipw_weights(model.ps_, t, estimand=estimand)
        assert (np.abs(smd(X, t, w)) < 0.05).all()
    unadj = balance_table(X, t)
    assert (unadj.status == "FAIL").all() and unadj.smd_after.isna().all()


def test_ipw_weights_formulas():
    ps = np.array([0.2, 0.5, 0.8, 0.4])
    t = np.array([1, 0, 1, 0])
    np.testing.assert_allclose(ipw_weights(ps, t, stabilized=False), [5, 2, 1.25, 1 / 0.6])
    np.testing.assert_allclose(ipw_weights(ps, t), 0.5 * np.array([5, 2, 1.25, 1 / 0.6]))
    np.testing.assert_allclose(ipw_weights(ps, t, estimand="att", stabilized=False), [1, 1, 1, 0.4 / 0.6])
    w = ipw_weights(np.linspace(0.01, 0.99, 99), np.arange(99) % 2, truncate=(5, 95), stabilized=False)
    assert w.max() == pytest.approx(np.percentile(ipw_weights(np.linspace(0.01, 0.99, 99), np.arange(99) % 2,
                                                              stabilized=False), 95))
    assert effective_sample_size(np.ones(10)) == 10
    with pytest.raises(InputError, match="'truncate'"):
        ipw_weights(ps, t, truncate=(50, 10))


def test_stratification():
    X, t = _confounded(5000)
    ps = fit_propensity(X, t).ps_
    s = stratify(ps, t, n_strata=5)
    assert set(s.tolist()) == set(range(5))
    counts = np.bincount(s)
    assert counts.min() >= 990 and counts.max() <= 1010  # quintiles of everyone
    tab = strata_table(s, t)
    assert tab.n_treated.sum() == t.sum() and tab.n_untreated.sum() == (1 - t).sum()
    w = stratum_weights(s, t, estimand="ate")
    assert np.abs(smd(X, t, w)).max() < np.abs(smd(X, t)).max() / 3
    assert w[t == 1].sum() == pytest.approx(t.sum()) and w[t == 0].sum() == pytest.approx((1 - t).sum())


def test_balance_bad_weights():
    with pytest.raises(InputError, match="weights"):
        smd(np.c_[[1.0, 2.0, 3.0]], [1, 0, 1], [1.0, -1.0, 1.0])
    with pytest.raises(InputError, match="empty"):
        smd(np.c_[[1.0, 2.0, 3.0]], [1, 0, 1], [1.0, 0.0, 1.0])


def test_sparse_covariates_give_the_same_smd_as_dense():
    import scipy.sparse as sp

    X, t = _confounded(3000, seed=4)
    dense = X.assign(code=(np.arange(3000) % 7 == 0).astype(float)).to_numpy()
    w = np.random.default_rng(0).uniform(0, 2, 3000)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        np.testing.assert_allclose(smd(fmt(dense), t, w), smd(dense, t, w), rtol=1e-10)
    tab = balance_table(sp.csr_matrix(dense), t, weights_after=w, feature_names=["age", "severe", "code"])
    assert list(tab.covariate) == ["age", "severe", "code"]
