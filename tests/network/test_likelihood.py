"""Pooling profile likelihoods (issue 18, point 3 and 4): the fixed-effect likelihood pool equals a
Cox model stratified by site on the union of the sites' data (reference: lifelines CoxPHFitter with
``strata``, Efron ties; cross-checked by the survival module's own stratified Cox)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from follicle.survival import fit_outcome_model
from follicle.survival.profile import cox_profile
from follicle.synthesis import generic_effects, meta_analysis
from follicle.synthesis.likelihood import CHI2_HALF, interpolate, pool_fixed, pool_random
from follicle.synth.sites import simulate_network, simulate_site


def site_profile(s, strata=True):
    """The site's Cox model stratified on the confounder (the site's adjustment), its profile."""
    fit = fit_outcome_model(s.time, s.event, s.treatment, robust_se=False, stratify_by_pair=strata, pair_id=s.confounder)
    row = fit.row()
    prof = cox_profile(s.time, s.event, s.treatment, center=row["coef"], se=row["se"],
                       strata=s.confounder if strata else None)
    return row, prof


def union_frame(sites):
    return pd.DataFrame({
        "time": np.concatenate([s.time for s in sites]), "event": np.concatenate([s.event for s in sites]).astype(int),
        "treatment": np.concatenate([s.treatment for s in sites]),
        "stratum": np.concatenate([i * 2 + s.confounder for i, s in enumerate(sites)])})


@pytest.mark.parametrize("seed", [1, 2])
def test_likelihood_pool_matches_site_stratified_cox_on_the_union(seed):
    sites = simulate_network(seed)
    profiles = [site_profile(s)[1] for s in sites]
    pooled = pool_fixed([(p.beta, p.loglik) for p in profiles])
    union = union_frame(sites)
    ref = CoxPHFitter().fit(union, "time", "event", strata=["stratum"])
    b = float(ref.params_["treatment"])
    assert abs(pooled.log_hr - b) < 1e-3
    ours = fit_outcome_model(union["time"], union["event"], union["treatment"], robust_se=False,
                             stratify_by_pair=True, pair_id=union["stratum"]).row()
    assert abs(ours["coef"] - b) < 1e-6
    # the LR interval of the union model: where its log-likelihood drops 1.92 from the maximum
    grid = np.linspace(b - 1, b + 1, 2001)
    full = cox_profile(union["time"], union["event"], union["treatment"], center=b, se=ours["se"],
                       strata=union["stratum"].to_numpy())
    ll = interpolate(full.beta, full.loglik, grid)
    inside = grid[ll >= ll.max() - CHI2_HALF]
    assert abs(pooled.ci_low - inside[0]) < 2e-3 and abs(pooled.ci_high - inside[-1]) < 2e-3


def test_profile_maximum_is_the_fitted_cox_estimate():
    rng = np.random.default_rng(5)
    s = simulate_site(rng, 800, log_hr=0.4, base_rate=3e-4, prevalence=0.4, confounding=1.0)
    row, prof = site_profile(s)
    assert prof.loglik.max() == 0.0
    assert abs(pool_fixed([(prof.beta, prof.loglik)]).log_hr - row["coef"]) < 1e-3
    # far enough on both sides for any pooled value that matters: 12 log-likelihood units down
    assert prof.loglik[0] < -CHI2_HALF and prof.loglik[-1] < -CHI2_HALF


def test_weighted_profile_peaks_at_the_weighted_fit():
    rng = np.random.default_rng(6)
    s = simulate_site(rng, 1000, log_hr=-0.3, base_rate=3e-4, prevalence=0.4, confounding=1.0)
    w = rng.uniform(0.5, 3.0, s.time.size)
    row = fit_outcome_model(s.time, s.event, s.treatment, robust_se=True, weights=w).row()
    prof = cox_profile(s.time, s.event, s.treatment, center=row["coef"], se=row["se"], weights=w)
    assert abs(pool_fixed([(prof.beta, prof.loglik)]).log_hr - row["coef"]) < 1e-3


def test_large_sites_likelihood_and_normal_pools_agree():
    """With many events at every site the likelihood is close to normal: both pools agree."""
    rng = np.random.default_rng(7)
    sites = [simulate_site(rng, 5000, log_hr=0.3, base_rate=1e-3, prevalence=0.3, confounding=0.5) for _ in range(3)]
    rows, profiles = zip(*(site_profile(s) for s in sites))
    lik = pool_fixed([(p.beta, p.loglik) for p in profiles])
    normal = meta_analysis(generic_effects([r["coef"] for r in rows], [r["se"] for r in rows], measure="HR"), method="EE")
    assert abs(lik.log_hr - normal.estimate) < 0.01
    assert abs(lik.ci_low - normal.ci_low) < 0.01 and abs(lik.ci_high - normal.ci_high) < 0.01


def test_random_effects_likelihood():
    """Homogeneous sites: tau near 0 and the fixed estimate; heterogeneous ones: a wider interval
    than the fixed pool, and tau of the order of the spread (true SD 0.5 here)."""
    rng = np.random.default_rng(8)
    same = [simulate_site(rng, 3000, log_hr=0.3, base_rate=5e-4, prevalence=0.3, confounding=0.5) for _ in range(5)]
    profiles = [(p.beta, p.loglik) for p in (site_profile(s)[1] for s in same)]
    fixed, rand = pool_fixed(profiles), pool_random(profiles)
    assert rand.tau <= 0.1 and abs(rand.log_hr - fixed.log_hr) < 0.02
    effects = [-0.6, -0.1, 0.3, 0.6, 1.0]
    apart = [simulate_site(rng, 3000, log_hr=b, base_rate=5e-4, prevalence=0.3, confounding=0.5) for b in effects]
    profiles = [(p.beta, p.loglik) for p in (site_profile(s)[1] for s in apart)]
    fixed, rand = pool_fixed(profiles), pool_random(profiles)
    assert rand.ci_high - rand.ci_low > 2 * (fixed.ci_high - fixed.ci_low)
    assert 0.2 <= rand.tau <= 1.0
    assert rand.ci_low < np.mean(effects) < rand.ci_high


def test_interpolation_is_exact_for_a_parabola_and_extrapolates_along_the_end_slope():
    beta = np.linspace(-1, 1, 11)
    ll = -(beta - 0.2) ** 2 / 0.08
    grid = np.linspace(-1, 1, 101)
    assert np.allclose(interpolate(beta, ll, grid), -(grid - 0.2) ** 2 / 0.08)
    out = interpolate(beta, ll, np.array([2.0]))
    slope = (ll[-1] - ll[-2]) / (beta[-1] - beta[-2])
    assert out[0] == pytest.approx(ll[-1] + slope * 1.0)


def test_no_profiles_is_an_error():
    with pytest.raises(ValueError, match="no site profiles"):
        pool_fixed([])
