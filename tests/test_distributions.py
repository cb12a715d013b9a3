"""follicle.distributions gives scipy.stats's numbers to the last bit (issue #21: the study pipeline
no longer imports scipy.stats, ~0.5 s of every `follicle run`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from follicle import distributions as d

RNG = np.random.default_rng(21)
X = np.r_[RNG.normal(size=2000) * 6, [0.0, -0.0, np.inf, -np.inf, np.nan, 40.0, -40.0, 1e-300]]
Q = np.r_[RNG.random(2000), [0.0, 1.0, 0.5, 1e-300, 1 - 1e-16, np.nan, 1.5, -0.1, 0.025, 0.975]]


def _same(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert type(a) is type(b)


def test_normal_matches_scipy_stats_bitwise():
    _same(d.norm_cdf(X), stats.norm.cdf(X))
    _same(d.norm_sf(X), stats.norm.sf(X))
    _same(d.norm_ppf(Q), stats.norm.ppf(Q))
    for v in (0.3, -1.96, 8.5):
        _same(d.norm_sf(v), stats.norm.sf(v))
        _same(d.norm_cdf(v), stats.norm.cdf(v))
    _same(d.norm_ppf(0.975), stats.norm.ppf(0.975))


@pytest.mark.parametrize("df", [1, 2, 3, 7.5, 30])
def test_chi2_matches_scipy_stats_bitwise(df):
    _same(d.chi2_sf(X, df), stats.chi2.sf(X, df))  # incl. x < 0 (sf = 1) and NaN
    _same(d.chi2_ppf(Q, df), stats.chi2.ppf(Q, df))
    _same(d.chi2_sf(3.2, df), stats.chi2.sf(3.2, df))
    chisq, dfs = pd.Series([1.0, 4.0, np.nan]), pd.Series([1, 2, 1])
    _same(d.chi2_sf(chisq, dfs), stats.chi2.sf(chisq, dfs))


def test_beta_quantile_matches_scipy_stats_bitwise():
    n = RNG.integers(1, 100_000, 3000)
    e = (RNG.random(3000) * n).astype(int) + 1
    for q in (0.025, 0.975, 0.005):
        _same(d.beta_ppf(q, e, n - e + 1), stats.beta.ppf(q, e, n - e + 1))
    _same(d.beta_ppf(0.025, 3, 10), stats.beta.ppf(0.025, 3, 10))


@pytest.mark.parametrize("values", [RNG.integers(0, 15, 800), RNG.normal(size=500), np.array([3.0, 1.0, 3.0, 2.0, 1.0])])
def test_average_ranks_match_rankdata(values):
    _same(d.rank_average(values), stats.rankdata(values, method="average"))
