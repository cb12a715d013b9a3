"""Numerical core of the Cox model: partial likelihood, Newton-Raphson, score residuals.

The data are sorted once by (stratum, time) and grouped by distinct time; every risk-set sum is a
reverse cumulative sum over the groups, so each Newton iteration is O(rows) vectorised numpy
(no Python loop over times). With a single binary covariate and no strata or weights, subjects
that share (time, covariate) are first collapsed into one row with counts, so with integer-day
times an iteration costs O(distinct times), whatever the number of subjects.

Ties follow R's ``coxph``: Breslow, or Efron (for d tied deaths, d terms in which the deaths'
risk is discounted by l/d, l = 0..d-1; with case weights the terms carry the mean death weight).

References
----------
Cox DR. Regression models and life-tables. JRSS B 1972;34:187-220.
Efron B. The efficiency of Cox's likelihood function for censored data. JASA 1977;72:557-565.
Breslow N. Covariance analysis of censored survival data. Biometrics 1974;30:89-99.
Bryson MC, Johnson ME. The incidence of monotone likelihood in the Cox model. Technometrics
1981;23:381-383.
Lin DY, Wei LJ. The robust inference for the Cox proportional hazards model. JASA 1989;84:1074-1078.
Therneau TM, Grambsch PM. Modeling Survival Data. Springer 2000 (score residuals, sections 4.6, 7.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from follicle.survival._risktable import distinct_times


@dataclass
class CoxData:
    """Rows sorted by (stratum, time), grouped by distinct time within stratum."""

    x: np.ndarray  # (m, p), centred
    x_mean: np.ndarray  # (p,)
    w_risk: np.ndarray  # (m,) summed case weights of the row's subjects
    w_death: np.ndarray  # (m,) summed case weights of the row's subjects who had the event
    grp_start: np.ndarray  # (G,) first row of each time group
    row_group: np.ndarray  # (m,) time group of each row
    strat_first: np.ndarray  # (G,) first group of the stratum of each group
    strat_last: np.ndarray  # (G,) last group of the stratum of each group
    stratified: bool
    term_g: np.ndarray  # (E,) group of each likelihood term
    term_frac: np.ndarray  # (E,) Efron discount l/d (0 for Breslow)
    term_w: np.ndarray  # (E,) weight of the term
    cell: np.ndarray  # (n,) row of each subject
    event: np.ndarray  # (n,) bool
    weight: np.ndarray  # (n,) case weights
    group_time: np.ndarray  # (G,) time of each group
    # one binary covariate: beta-free risk-set totals of x = 0 and x = 1 per term (log scale)
    bin_log_n0: np.ndarray | None = None
    bin_log_n1: np.ndarray | None = None
    bin_n0: np.ndarray | None = None
    bin_n1: np.ndarray | None = None
    bin_d1: float = 0.0

    @property
    def n_groups(self) -> int:
        return len(self.grp_start)


def _group_sum(data: CoxData, a: np.ndarray) -> np.ndarray:
    if len(data.grp_start) == len(a):
        return a
    return np.add.reduceat(a, data.grp_start, axis=0)


def _revcum(data: CoxData, a: np.ndarray) -> np.ndarray:
    """Sum over groups h >= g in the same stratum (risk sets)."""
    rc = np.cumsum(a[::-1], axis=0)[::-1]
    if data.stratified:
        nxt = data.strat_last + 1
        pad = np.concatenate([rc, np.zeros((1,) + rc.shape[1:])], axis=0)
        rc = rc - pad[nxt]
    return rc


def _cum(data: CoxData, a: np.ndarray) -> np.ndarray:
    """Sum over groups h <= g in the same stratum."""
    cs = np.cumsum(a, axis=0)
    if data.stratified:
        pad = np.concatenate([np.zeros((1,) + cs.shape[1:]), cs], axis=0)
        cs = cs - pad[data.strat_first]
    return cs


def prepare(
    time: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    ties: str = "efron",
) -> CoxData:
    """Sort, group and (for one binary covariate) collapse the data once."""
    n, p = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    binary = strata is None and weights is None and p == 1 and np.isin(x[:, 0], (0.0, 1.0)).all()
    if binary:
        uniq, inv = distinct_times(time)
        n_t = len(uniq)
        key = inv * 2 + x[:, 0].astype(np.int64)
        counts = np.bincount(key, minlength=2 * n_t).astype(np.float64)
        deaths = np.bincount(key[event.astype(bool)], minlength=2 * n_t).astype(np.float64)
        keep = counts > 0
        rows = np.flatnonzero(keep)
        cell = (np.cumsum(keep) - 1)[key]
        del key, inv
        xr = (rows % 2).astype(np.float64)[:, None]
        row_group = rows // 2
        w_risk, w_death = counts[rows], deaths[rows]
        grp_start = np.searchsorted(row_group, np.arange(n_t))
        group_time = uniq
        strat_of_group = np.zeros(n_t, dtype=np.int64)
        n_death_rows = deaths[rows]
    else:
        s = np.zeros(n, dtype=np.int64) if strata is None else strata
        order = np.lexsort((time, s)) if strata is not None else np.argsort(time, kind="stable")
        ts, ss = time[order], s[order]
        new = np.empty(n, dtype=bool)
        new[0] = True
        new[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
        row_group = np.cumsum(new) - 1
        grp_start = np.flatnonzero(new)
        group_time = ts[new]
        strat_of_group = ss[new]
        cell = np.empty(n, dtype=np.int64)
        cell[order] = np.arange(n)
        xr = x[order]
        ev = event[order].astype(np.float64)
        w_risk = w[order]
        w_death = w_risk * ev
        n_death_rows = ev
    g_count = len(grp_start)
    x_mean = (w_risk[:, None] * xr).sum(axis=0) / w_risk.sum()
    # stratum boundaries in group index space
    change = np.r_[True, strat_of_group[1:] != strat_of_group[:-1]]
    first_idx = np.flatnonzero(change)
    last_idx = np.r_[first_idx[1:] - 1, g_count - 1]
    which = np.cumsum(change) - 1
    d_g = np.rint(np.bincount(row_group, weights=n_death_rows, minlength=g_count)).astype(np.int64)
    wd_g = np.bincount(row_group, weights=w_death, minlength=g_count)
    if ties == "efron":
        term_g = np.repeat(np.arange(g_count), d_g)
        offsets = np.repeat(np.cumsum(d_g) - d_g, d_g)
        term_frac = (np.arange(len(term_g)) - offsets) / d_g[term_g]
        term_w = (wd_g / np.maximum(d_g, 1))[term_g]
    else:
        term_g = np.flatnonzero(d_g > 0)
        term_frac = np.zeros(len(term_g))
        term_w = wd_g[term_g]
    data = CoxData(
        x=xr - x_mean, x_mean=x_mean, w_risk=w_risk, w_death=w_death, grp_start=grp_start, row_group=row_group,
        strat_first=first_idx[which], strat_last=last_idx[which], stratified=strata is not None,
        term_g=term_g, term_frac=term_frac, term_w=term_w, cell=cell, event=np.asarray(event, dtype=bool),
        weight=w, group_time=group_time,
    )
    if p == 1 and np.isin(xr[:, 0], (0.0, 1.0)).all():
        _add_binary_totals(data, xr[:, 0] == 1.0)
    return data


def _add_binary_totals(data: CoxData, x1: np.ndarray) -> None:
    """With x in {0, 1} the risk set at each term is n0 + n1 exp(beta): precompute n0 and n1 once.

    Each Newton step is then a few operations on arrays with one entry per event (no sums over
    the risk sets), which is what makes a million-row fit take well under a second.
    """
    g, f = data.term_g, data.term_frac
    r1 = _revcum(data, _group_sum(data, data.w_risk * x1))
    r0 = _revcum(data, _group_sum(data, data.w_risk * ~x1))
    d1 = _group_sum(data, data.w_death * x1)
    d0 = _group_sum(data, data.w_death * ~x1)
    data.bin_n0 = np.maximum(r0[g] - f * d0[g], 0.0)
    data.bin_n1 = np.maximum(r1[g] - f * d1[g], 0.0)
    with np.errstate(divide="ignore"):
        data.bin_log_n0 = np.log(data.bin_n0)
        data.bin_log_n1 = np.log(data.bin_n1)
    data.bin_d1 = float(data.w_death @ x1)


@dataclass
class TermStats:
    """Per likelihood term: the risk-set total s0 and mean covariate xbar; per row exp(eta - shift).

    ``r`` and ``s0`` are both scaled by exp(-shift) (shift = max eta), which keeps large linear
    predictors from overflowing; every ratio (xbar, information, residuals) is unchanged.
    """

    s0: np.ndarray
    xbar: np.ndarray
    r: np.ndarray
    eta: np.ndarray
    shift: float = 0.0


def term_stats(data: CoxData, beta: np.ndarray) -> TermStats:
    """Risk-set sums at *beta* for every likelihood term (Efron-discounted where needed)."""
    eta = data.x @ beta
    shift = float(eta.max()) if eta.size and np.isfinite(eta.max()) and eta.max() > 0 else 0.0
    r = np.exp(eta - shift)
    rr = data.w_risk * r
    x = data.x
    g, f = data.term_g, data.term_frac
    a0 = _revcum(data, _group_sum(data, rr))[g]
    a1 = _revcum(data, _group_sum(data, rr[:, None] * x))[g]
    if f.any():
        rd = data.w_death * r
        a0 = a0 - f * _group_sum(data, rd)[g]
        a1 = a1 - f[:, None] * _group_sum(data, rd[:, None] * x)[g]
    with np.errstate(invalid="ignore", divide="ignore"):
        return TermStats(a0, a1 / a0[:, None], r, eta, shift)


def weighted_information(data: CoxData, ts: TermStats, weight: np.ndarray) -> np.ndarray:
    """sum over terms of weight * (S2/S0 - xbar xbar'), without forming a p x p matrix per term.

    S2 = sum over the risk set of r x x' (deaths at the term's own time discounted by l/d), so
    sum_e weight_e S2_e / S0_e = X' diag(r * h) X, h_i the summed weight/S0 of the terms whose
    risk set holds row i. Memory stays O(rows * p) rather than O(rows * p^2).
    """
    g_count = data.n_groups
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # far out on a monotone likelihood
        inv = weight / ts.s0
        h_all = np.bincount(data.term_g, weights=inv, minlength=g_count)
        h_own = np.bincount(data.term_g, weights=inv * data.term_frac, minlength=g_count)
        rg = data.row_group
        row_w = ts.r * (data.w_risk * _cum(data, h_all)[rg] - data.w_death * h_own[rg])
    second = (data.x * row_w[:, None]).T @ data.x
    return second - (ts.xbar * weight[:, None]).T @ ts.xbar


def loglik_derivs(data: CoxData, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, its gradient and the information matrix at *beta*."""
    if data.bin_log_n0 is not None:
        b = float(beta[0])
        tw = data.term_w
        if abs(b) < 30:  # plain arithmetic is exact enough and several times faster
            s1 = data.bin_n1 * np.exp(b)
            s0 = data.bin_n0 + s1
            log_s0 = np.log(s0)
            xbar = s1 / s0
        else:  # log scale, safe from overflow for extreme coefficients
            log_s0 = np.logaddexp(data.bin_log_n0, data.bin_log_n1 + b)
            xbar = np.exp(data.bin_log_n1 + b - log_s0)
        ll = b * data.bin_d1 - float(tw @ log_s0)
        grad = data.bin_d1 - float(tw @ xbar)
        info = float(tw @ (xbar * (1.0 - xbar)))
        return ll, np.array([grad]), np.array([[info]])
    ts = term_stats(data, beta)
    tw = data.term_w
    with np.errstate(divide="ignore"):
        ll = float(data.w_death @ ts.eta - tw @ (np.log(ts.s0) + ts.shift))
    grad = data.w_death @ data.x - tw @ ts.xbar
    return ll, grad, weighted_information(data, ts, tw)


def newton(
    data: CoxData, beta0: np.ndarray | None = None, *, tol: float = 1e-10, max_iter: int = 50,
    free: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float, np.ndarray, int, bool]:
    """Maximise the partial likelihood by Newton-Raphson with step halving (as R's coxph).

    *free* (boolean per coefficient) keeps the others fixed at *beta0* (profile likelihoods).
    Returns beta, loglik, null loglik, information, iterations and whether it converged.
    """
    p = data.x.shape[1]
    beta = np.zeros(p) if beta0 is None else np.asarray(beta0, dtype=float).copy()
    fr = np.ones(p, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    ll, grad, info = loglik_derivs(data, beta)
    ll_null = ll if beta0 is None else loglik_derivs(data, np.zeros(p))[0]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        step = np.zeros(p)
        sub = info[np.ix_(fr, fr)]
        try:
            step[fr] = np.linalg.solve(sub, grad[fr])
        except np.linalg.LinAlgError:
            step[fr] = np.linalg.lstsq(sub, grad[fr], rcond=None)[0]
        new = beta + step
        ll_new, grad_new, info_new = loglik_derivs(data, new)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12 * abs(ll)) and halvings < 30:
            step = step / 2
            new = beta + step
            ll_new, grad_new, info_new = loglik_derivs(data, new)
            halvings += 1
        if not (np.isfinite(ll_new) and np.all(np.isfinite(grad_new)) and np.all(np.isfinite(info_new))):
            break  # no finite step left (risk sets underflow far out on a monotone likelihood): stop here
        small_step = np.max(np.abs(step)) <= tol * (1 + np.max(np.abs(new)))
        flat = abs(ll_new - ll) <= 1e-14 * max(1.0, abs(ll_new))
        beta, ll, grad, info = new, ll_new, grad_new, info_new
        if small_step or flat:
            converged = bool(small_step or np.max(np.abs(step)) < 1e-6)
            break
    return beta, ll, ll_null, info, it, converged


def _risk_set_extreme(data: CoxData, values: np.ndarray, largest: bool) -> np.ndarray:
    """Per time group: the largest (smallest) value over its risk set (rows at or after it, same stratum)."""
    g = (np.maximum if largest else np.minimum).reduceat(values, data.grp_start)
    if not data.stratified:
        return (np.maximum if largest else np.minimum).accumulate(g[::-1])[::-1]
    ser = pd.Series(g[::-1])
    grp = ser.groupby(data.strat_first[::-1], sort=False)
    return (grp.cummax() if largest else grp.cummin()).to_numpy()[::-1]


def monotone_signs(data: CoxData, eta: np.ndarray, *, tol: float = 1e-9) -> tuple[bool, bool]:
    """Whether the log partial likelihood rises without bound along +d and along -d, eta = x'd per row.

    Along +d: every event's eta is the largest in its risk set (each term eta_i - log sum_R
    exp(eta_j) then never decreases; with Efron's ties too) and some risk set holds a smaller
    one (so the likelihood keeps rising): the monotone likelihood of Bryson and Johnson (1981),
    whose maximum lies at infinity. Along -d the same with the smallest.
    """
    ev = data.w_death > 0
    if not ev.any():
        return False, False
    scale = tol * (1.0 + float(np.max(np.abs(eta))))
    at = data.row_group[ev]
    e_eta = eta[ev]
    top = _risk_set_extreme(data, eta, largest=True)[at]
    up_ok = bool(np.all(e_eta >= top - scale))
    low = _risk_set_extreme(data, eta, largest=False)[at]
    down_ok = bool(np.all(e_eta <= low + scale))
    if not (up_ok or down_ok):
        return False, False
    return up_ok and bool(np.any(e_eta > low + scale)), down_ok and bool(np.any(e_eta < top - scale))


def monotone_direction(data: CoxData, d: np.ndarray, *, tol: float = 1e-9) -> bool:
    """Whether the log partial likelihood rises without bound along direction *d* (see :func:`monotone_signs`)."""
    return monotone_signs(data, data.x @ np.asarray(d, dtype=float), tol=tol)[0]


def score_residuals(data: CoxData, beta: np.ndarray) -> np.ndarray:
    """Weighted score residuals, one row per subject (sum to the score; R ``residuals(type='score')*w``)."""
    ts = term_stats(data, beta)
    g_count = data.n_groups
    p = data.x.shape[1]
    tw, f, g = data.term_w, data.term_frac, data.term_g
    inv = tw / ts.s0

    def by_group(v: np.ndarray) -> np.ndarray:
        if v.ndim == 1:
            return np.bincount(g, weights=v, minlength=g_count)
        return np.stack([np.bincount(g, weights=v[:, j], minlength=g_count) for j in range(v.shape[1])], axis=1)

    h1 = by_group(inv)
    hx1 = by_group(inv[:, None] * ts.xbar)
    h2 = by_group(inv * (1 - f))
    hx2 = by_group((inv * (1 - f))[:, None] * ts.xbar)
    wsum = by_group(tw)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_xbar = np.where(wsum[:, None] > 0, by_group(tw[:, None] * ts.xbar) / wsum[:, None], 0.0)
    c1, cx1 = _cum(data, h1), _cum(data, hx1)
    rg = data.row_group
    x, r = data.x, ts.r[:, None]
    risk_cens = r * (x * c1[rg][:, None] - cx1[rg])
    risk_dead = r * (x * (c1[rg] - h1[rg] + h2[rg])[:, None] - (cx1[rg] - hx1[rg] + hx2[rg]))
    dead_row = x - mean_xbar[rg] - risk_dead
    cell = data.cell
    resid = np.where(data.event[:, None], dead_row[cell], -risk_cens[cell])
    return resid.reshape(-1, p) * data.weight[:, None]


def robust_variance(data: CoxData, beta: np.ndarray, var: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """Sandwich variance V (sum over clusters of U_c U_c') V, U_c the summed score residuals."""
    u = score_residuals(data, beta)
    if cluster is not None:
        n_c = int(cluster.max()) + 1
        u = np.stack([np.bincount(cluster, weights=u[:, j], minlength=n_c) for j in range(u.shape[1])], axis=1)
    dfbeta = u @ var
    return dfbeta.T @ dfbeta
