"""Pooling of profile likelihoods: sites' log-likelihood curves of one coefficient, summed.

Fixed effect: the sites share one log HR, so the pooled log-likelihood is the sum of the sites'
profiles (each interpolated to a common grid); its maximum is the estimate and the 95% CI is where
the sum is within chi2(1, 0.95) / 2 = 1.92 of it (likelihood-ratio interval). For a Cox model
without covariates other than treatment, stratified by site, this sum is the model's own
likelihood: pooling loses nothing to the normal approximation, which is what goes wrong at a site
with few events.

Random effects: each site's log HR is its own, drawn from N(mu, tau^2). A site's likelihood of
(mu, tau) integrates its profile likelihood against that normal density on the grid; the sum over
sites is maximised over tau for each mu (a profile likelihood of mu), with the same 1.92 drop for
the CI. This is the non-normal random-effects model of EvidenceSynthesis, fitted by profile
likelihood on a grid of tau rather than by MCMC, so its interval is a likelihood-ratio interval, not
a credible interval.

Pure functions over arrays (no I/O). Reference: Schuemie MJ, Chen Y, Madigan D, Suchard MA.
Combining Cox regressions across a heterogeneous distributed research network facing small and zero
counts. Stat Methods Med Res 2022;31:438-450.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal, stats

#: Half the 95% quantile of chi2(1): the drop of the log-likelihood at the ends of a 95% LR interval.
CHI2_HALF = float(stats.chi2.ppf(0.95, 1) / 2)
#: Spacing of the common grid (log HR); the maximum is refined by a parabola through its neighbours.
STEP = 0.002
#: Grid of tau (between-site SD of the log HR) for the random-effects fit.
TAUS = np.array([0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5])
#: Grid spacing (log HR) of the random-effects integration.
RANDOM_STEP = 0.01


@dataclass(frozen=True)
class LikelihoodPool:
    """A pooled log HR with its likelihood-ratio CI (either end may be +/- inf when the pooled curve
    does not drop 1.92 within the grid); ``tau`` for the random-effects fit."""

    log_hr: float
    ci_low: float
    ci_high: float
    k: int
    tau: float | None = None
    note: str = ""


def interpolate(beta: np.ndarray, loglik: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """*loglik* at *grid*: a parabola through the three nearest grid points inside the range, the
    end slope continued outside it (a concave curve stays under its tangent, so the extrapolation
    never favours a value the site did not evaluate)."""
    n = beta.size
    if n < 3:
        return np.interp(grid, beta, loglik)
    i = np.clip(np.searchsorted(beta, grid) - 1, 0, n - 3)
    i = np.where((i + 2 < n - 1) & (grid - beta[i] > beta[i + 2] - grid), i + 1, i)
    x0, x1, x2 = beta[i], beta[i + 1], beta[i + 2]
    y0, y1, y2 = loglik[i], loglik[i + 1], loglik[i + 2]
    out = (y0 * (grid - x1) * (grid - x2) / ((x0 - x1) * (x0 - x2))
           + y1 * (grid - x0) * (grid - x2) / ((x1 - x0) * (x1 - x2))
           + y2 * (grid - x0) * (grid - x1) / ((x2 - x0) * (x2 - x1)))
    lo, hi = grid < beta[0], grid > beta[-1]
    if lo.any():
        slope = (loglik[1] - loglik[0]) / (beta[1] - beta[0])
        out[lo] = loglik[0] + slope * (grid[lo] - beta[0])
    if hi.any():
        slope = (loglik[-1] - loglik[-2]) / (beta[-1] - beta[-2])
        out[hi] = loglik[-1] + slope * (grid[hi] - beta[-1])
    return out


def common_grid(profiles: Sequence[tuple[np.ndarray, np.ndarray]], step: float = STEP) -> np.ndarray:
    """A grid of spacing *step* over the intersection of the sites' ranges (each site's curve is
    known there); the union when they do not overlap."""
    lo = max(float(b[0]) for b, _ in profiles)
    hi = min(float(b[-1]) for b, _ in profiles)
    if hi - lo < 10 * step:
        lo, hi = min(float(b[0]) for b, _ in profiles), max(float(b[-1]) for b, _ in profiles)
    return np.arange(lo, hi + step / 2, step)


def summed(profiles: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """The sites' log-likelihoods summed on *grid*."""
    total = np.zeros_like(grid)
    for beta, ll in profiles:
        total += interpolate(beta, ll, grid)
    return total


def mle_and_ci(grid: np.ndarray, ll: np.ndarray) -> tuple[float, float, float]:
    """Maximum of *ll* on *grid* (refined by a parabola through its neighbours) and the LR 95% CI:
    where ``ll`` crosses ``max - 1.92`` (linear interpolation); +/- inf when it does not within the grid."""
    j = int(np.argmax(ll))
    top = float(ll[j])
    est = float(grid[j])
    if 0 < j < grid.size - 1:
        y0, y1, y2 = ll[j - 1], ll[j], ll[j + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            shift = 0.5 * (y0 - y2) / denom
            est = float(grid[j] + shift * (grid[j + 1] - grid[j]))
            top = float(y1 - 0.25 * (y0 - y2) * shift)
    cut = top - CHI2_HALF
    below = ll < cut
    left = np.flatnonzero(below[:j])
    right = np.flatnonzero(below[j:])
    low = high = float("nan")
    if left.size:
        a = left[-1]
        low = float(np.interp(cut, [ll[a], ll[a + 1]], [grid[a], grid[a + 1]]))
    else:
        low = float("-inf")
    if right.size:
        b = j + right[0]
        high = float(np.interp(cut, [ll[b], ll[b - 1]], [grid[b], grid[b - 1]]))
    else:
        high = float("inf")
    return est, low, high


def pool_fixed(profiles: Sequence[tuple[np.ndarray, np.ndarray]]) -> LikelihoodPool:
    """Fixed-effect pooling of (beta, loglik) profiles: the maximum of their sum and its LR CI."""
    if not profiles:
        raise ValueError("no site profiles to pool")
    grid = common_grid(profiles)
    est, low, high = mle_and_ci(grid, summed(profiles, grid))
    return LikelihoodPool(est, low, high, len(profiles))


def pool_random(profiles: Sequence[tuple[np.ndarray, np.ndarray]], taus: np.ndarray = TAUS,
                step: float = RANDOM_STEP) -> LikelihoodPool:
    """Random-effects pooling (normal random effect integrated over each site's profile likelihood;
    tau profiled out over *taus*); see the module docstring.

    Each site's likelihood is put on one grid of spacing *step* over the union of the sites' ranges
    and convolved with the N(0, tau^2) density (FFT); a tau under 1.5 steps is not resolved by the
    grid and is left out (tau = 0, the fixed-effect sum, stands for it).
    """
    if not profiles:
        raise ValueError("no site profiles to pool")
    lo = min(float(b[0]) for b, _ in profiles)
    hi = max(float(b[-1]) for b, _ in profiles)
    theta = np.arange(lo, hi + step / 2, step)
    site_ll = np.vstack([interpolate(b, ll, theta) for b, ll in profiles])  # (sites, grid)
    shift = site_ll.max(axis=1, keepdims=True)
    lik = np.exp(site_ll - shift)
    best = site_ll.sum(axis=0)
    best_tau = np.zeros_like(theta)
    for tau in taus[taus >= 1.5 * step]:
        half = int(np.ceil(5 * tau / step))
        z = np.arange(-half, half + 1) * step / tau
        kernel = np.exp(-0.5 * z * z) / (tau * np.sqrt(2 * np.pi)) * step
        smooth = signal.fftconvolve(lik, kernel[None, :], mode="same", axes=1)
        value = (np.log(np.maximum(smooth, 1e-300)) + shift).sum(axis=0)
        better = value > best
        best = np.where(better, value, best)
        best_tau = np.where(better, tau, best_tau)
    est, low, high = mle_and_ci(theta, best)
    tau_hat = float(best_tau[int(np.argmax(best))])
    return LikelihoodPool(est, low, high, len(profiles), tau=tau_hat,
                          note=f"tau profiled over {', '.join(f'{t:g}' for t in taus)}")
