"""The graph-theoretical (weighted least squares) network meta-analysis of Rücker (2012).

Pure numpy; mirrors netmeta's ``prepare()``/``multiarm()`` (reduced weights for multi-arm studies,
Rücker & Schwarzer 2014) and ``nma_ruecker()`` (Laplacian pseudoinverse, hat matrix, Q, the
generalised DerSimonian-Laird tau^2 of Jackson et al. 2012 as netmeta computes it).

References
----------
Rücker G (2012). Network meta-analysis, electrical networks and graph theory. Res Synth Methods 3:312-24.
Rücker G, Schwarzer G (2014). Reduce dimension or reduce weights? Comparing two approaches to multi-arm
studies in network meta-analysis. Stat Med 33:4353-69.
Jackson D, White IR, Riley RD (2012). Quantifying the impact of between-study heterogeneity in
multivariate meta-analyses. Stat Med 31:3805-20.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm

from follicle.synthesis.nma._graph import Network, full_incidence, incidence


def laplacian_pinv(lap: np.ndarray) -> np.ndarray:
    """Moore-Penrose pseudoinverse of a connected graph's Laplacian: (L - J/n)^-1 + J/n (netmeta ``invmat``)."""
    n = lap.shape[0]
    j = np.full((n, n), 1.0 / n)
    return np.linalg.inv(lap - j) + j


def multiarm_variances(r: np.ndarray) -> np.ndarray:
    """Adjusted comparison variances of one multi-arm study (netmeta ``multiarm()``).

    *r* holds the p(p-1)/2 comparison variances in the order (1,2), (1,3), ..., (p-1,p). Their
    weights become the off-diagonal of the Laplacian that reproduces the study's variances, so the
    study counts once; tiny negative weights (< 0.1% of the total) are set to zero, as in netmeta.
    """
    m = len(r)
    k = int(round((1 + np.sqrt(8 * m + 1)) / 2))
    b = full_incidence(k)
    brb = b.T @ np.diag(r) @ b
    rmat = np.diag(np.diag(brb)) - brb
    btb = b.T @ b
    lt = -0.5 * btb @ rmat @ btb / k**2
    lap = laplacian_pinv(lt)
    w = np.diag(np.diag(lap)) - lap
    total = np.sum(np.abs(w)[np.tril_indices(k, -1)])
    w[(w < 0) & (np.abs(w) / total < 0.001)] = 0.0
    with np.errstate(divide="ignore"):
        v = 1.0 / w
    iu = np.triu_indices(k, 1)
    return v[iu]


def adjusted_variances(net: Network, tau2: float = 0.0) -> np.ndarray:
    """Per-comparison variances after adding tau^2 and reducing multi-arm weights (netmeta ``prepare()``)."""
    var = net.se**2 + tau2
    out = var.copy()
    for study in net.studies:
        idx = np.flatnonzero(net.study == study)
        if len(idx) > 1:
            out[idx] = multiarm_variances(var[idx])
    return out


@dataclass(frozen=True)
class GraphFit:
    """One fit of the network: treatment-level estimates and the quantities netmeta derives from them."""

    te: np.ndarray  # n x n, te[i, j] = treatment i minus treatment j
    se: np.ndarray  # n x n standard errors (sqrt of resistance distances)
    lplus: np.ndarray  # n x n pseudoinverse of the weighted Laplacian = covariance of centred effects
    te_nma: np.ndarray  # fitted (consistent) value of each comparison
    var_adj: np.ndarray  # adjusted variance of each comparison
    hat: np.ndarray | None  # m x m hat matrix H = B L+ B' W (None when not asked for)
    q: float
    df: int
    q_contrib: np.ndarray  # w_i (TE_i - fitted_i)^2


def fit_graph(net: Network, var_adj: np.ndarray, *, with_hat: bool = True) -> GraphFit:
    """Weighted least squares on the graph (netmeta ``nma_ruecker``) with the given adjusted variances."""
    w = 1.0 / var_adj
    b = incidence(net.pos1, net.pos2, net.n)
    lap = b.T @ (w[:, None] * b)
    lplus = laplacian_pinv(lap)
    hat = (b @ lplus @ b.T) * w[None, :] if with_hat else None
    theta = lplus @ (b.T @ (w * net.te))
    fitted = b @ theta
    te = theta[:, None] - theta[None, :]
    d = np.diag(lplus)
    resist = np.maximum(d[:, None] + d[None, :] - 2 * lplus, 0.0)
    resid = net.te - fitted
    df = int(round(np.sum(2.0 / net.narms))) - (net.n - 1)
    if df == 0:  # saturated model: the residuals are zero (up to rounding)
        resid = np.zeros_like(resid)
    q = float(np.sum(w * resid**2))
    return GraphFit(te=te, se=np.sqrt(resist), lplus=lplus, te_nma=fitted, var_adj=var_adj, hat=hat, q=q, df=df,
                    q_contrib=w * resid**2)


def tau2_dl(net: Network, fit: GraphFit) -> float:
    """Generalised DerSimonian-Laird tau^2, netmeta's formula: max(0, (Q - df) / tr((I - H)(BB' o E / 2) W))."""
    if fit.df == 0:
        return float("nan")
    assert fit.hat is not None
    b = incidence(net.pos1, net.pos2, net.n)
    same = net.study[:, None] == net.study[None, :]
    p = (b @ b.T) * same / 2.0
    w = 1.0 / fit.var_adj
    denom = float(np.sum((np.eye(net.m) - fit.hat) * (p * w[None, :]).T))  # trace of the product
    return max(0.0, (fit.q - fit.df) / denom)


def i2_ci(q: float, df: int, level: float = 0.95) -> tuple[float, float, float]:
    """I^2 with the Higgins & Thompson (2002) interval, as meta's ``isquared()`` (proportions, not %)."""
    if df < 1 or not np.isfinite(q):
        return float("nan"), float("nan"), float("nan")
    k = df + 1
    h = np.sqrt(q / df)
    if q > k:
        se_log = 0.5 * (np.log(q) - np.log(k - 1)) / (np.sqrt(2 * q) - np.sqrt(2 * k - 3)) if k >= 2 else np.nan
    else:
        se_log = np.sqrt(1 / (2 * (k - 2)) * (1 - 1 / (3 * (k - 2) ** 2))) if k > 2 else np.nan
    z = norm.isf((1 - level) / 2)
    lh = np.log(max(h, 1.0))
    hs = (np.exp(lh), max(np.exp(lh - z * se_log), 1.0), max(np.exp(lh + z * se_log), 1.0))

    def to_i2(x: float) -> float:
        return float((x**2 - 1) / x**2) if np.isfinite(x) else float("nan")

    return to_i2(hs[0]), to_i2(hs[1]), to_i2(hs[2])


def q_pvalue(q: float, df: int) -> float:
    return float(chi2.sf(q, df)) if df > 0 else float("nan")


def pooled_iv(te: np.ndarray, se: np.ndarray, tau2: float = 0.0) -> tuple[float, float]:
    """Inverse-variance pooled estimate and its standard error (meta ``metagen``, tau^2 preset)."""
    w = 1.0 / (se**2 + tau2)
    return float(np.sum(w * te) / np.sum(w)), float(np.sqrt(1.0 / np.sum(w)))


def dl_pairwise(te: np.ndarray, se: np.ndarray) -> tuple[float, float, float]:
    """Q, DerSimonian-Laird tau^2 and I^2 of one direct comparison (nan where undefined)."""
    k = len(te)
    if k < 2:
        return float("nan"), float("nan"), float("nan")
    w = 1.0 / se**2
    mu = np.sum(w * te) / np.sum(w)
    q = float(np.sum(w * (te - mu) ** 2))
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return q, float(tau2), float(i2)
