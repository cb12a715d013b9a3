"""Empirical calibration (Schuemie 2014, 2018) recovers a known systematic-error distribution from
simulated controls, and calibrated intervals reach nominal coverage where the naive ones do not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from follicle.causal import calibrate_ci, calibrate_p, fit_null, fit_systematic_error_model
from follicle.errors import InputError


def _controls(rng, n, mean, sd, theta=None):
    se = rng.uniform(0.05, 0.4, n)
    theta = np.zeros(n) if theta is None else theta
    return theta + rng.normal(mean, np.sqrt(sd ** 2 + se ** 2)), se


def test_fit_null_recovers_known_null():
    rng = np.random.default_rng(20140101)
    b, se = _controls(rng, 2000, 0.2, 0.15)
    null = fit_null(b, se)
    assert null.mean == pytest.approx(0.2, abs=0.02)
    assert null.sd == pytest.approx(0.15, abs=0.02)
    assert null.n_controls == 2000


def test_fit_null_is_the_maximum_likelihood_estimate():
    rng = np.random.default_rng(5)
    b, se = _controls(rng, 50, -0.1, 0.3)
    null = fit_null(b, se)

    def loglik(m, s):
        return stats.norm.logpdf(b, m, np.sqrt(s ** 2 + se ** 2)).sum()

    best = loglik(null.mean, null.sd)
    for dm, ds in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)]:
        assert loglik(null.mean + dm, null.sd + ds) < best


def test_calibrated_p_formula_and_uniform_under_null():
    rng = np.random.default_rng(7)
    b, se = _controls(rng, 1000, 0.25, 0.2)
    null = fit_null(b[:500], se[:500])
    p = calibrate_p(null, b[500:], se[500:])
    z = (b[500:] - null.mean) / np.sqrt(null.sd ** 2 + se[500:] ** 2)
    np.testing.assert_allclose(p, 2 * stats.norm.sf(np.abs(z)), rtol=1e-12)
    # calibrated p-values of new null estimates are ~uniform: ~5% below 0.05; naive ones are far more
    assert 0.02 < np.mean(p < 0.05) < 0.09
    naive = 2 * stats.norm.sf(np.abs(b[500:] / se[500:]))
    assert np.mean(naive < 0.05) > 0.25


def test_systematic_error_model_and_calibrated_ci_coverage():
    rng = np.random.default_rng(2018)
    n = 800
    theta = rng.choice(np.log([1.0, 1.5, 2.0, 4.0]), n)
    se = rng.uniform(0.05, 0.3, n)
    sd_sys = 0.1 + 0.05 * np.abs(theta)
    obs = rng.normal(0.1 + 0.9 * theta, np.sqrt(sd_sys ** 2 + se ** 2))
    model = fit_systematic_error_model(obs, se, theta)
    assert model.a == pytest.approx(0.1, abs=0.03)
    assert model.b == pytest.approx(0.9, abs=0.05)
    assert model.c == pytest.approx(0.1, abs=0.03)
    # new estimates with known truth: calibrated 95% CIs cover ~95%, naive CIs much less
    t_new = rng.choice(np.log([1.0, 2.0, 3.0]), 300)
    se_new = rng.uniform(0.05, 0.3, 300)
    o_new = rng.normal(0.1 + 0.9 * t_new, np.sqrt((0.1 + 0.05 * np.abs(t_new)) ** 2 + se_new ** 2))
    cover = [(c.ci_low <= t <= c.ci_high) for c, t in
             ((calibrate_ci(model, o, s), t) for o, s, t in zip(o_new, se_new, t_new))]
    naive = np.abs(o_new - t_new) <= 1.96 * se_new
    assert 0.91 <= np.mean(cover) <= 0.99
    assert np.mean(naive) < 0.9  # systematic error makes naive intervals undercover (0.87 here)


def test_negative_controls_only_gives_closed_form_ci():
    null = fit_null(*_controls(np.random.default_rng(3), 100, 0.1, 0.1))
    model = fit_systematic_error_model(*_controls(np.random.default_rng(3), 100, 0.1, 0.1), np.zeros(100))
    assert (model.b, model.d) == (1.0, 0.0)
    ci = calibrate_ci(null, 0.5, 0.2)
    half = 1.959963984540054 * np.sqrt(null.sd ** 2 + 0.04)
    assert ci.log_rr == pytest.approx(0.5 - null.mean)
    assert ci.ci_low == pytest.approx(0.5 - null.mean - half, rel=1e-9)
    assert ci.ci_high == pytest.approx(0.5 - null.mean + half, rel=1e-9)


def test_too_few_controls():
    with pytest.raises(InputError, match="at least 2 negative controls"):
        fit_null([0.1, np.nan], [0.1, 0.2])
