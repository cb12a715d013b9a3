"""How much each direct comparison and each study contributes to each network estimate.

The aggregated hat matrix (netmeta ``hatmatrix.aggr``) gives, for every pair of treatments, an
evidence flow over the direct comparisons. The random-walk method (Davies et al. 2022; netmeta
``netcontrib(method = "randomwalk")``) walks from one treatment to the other along the flow, with
transition probabilities proportional to it; a direct comparison's contribution is the sum, over the
walk's paths through it, of the path probability divided by the path length. Contributions of a row
sum to 1. A study's contribution is its direct comparison's contribution split by the study's
(multi-arm-adjusted) inverse-variance weight within that comparison, as CINeMA does.

References
----------
Davies AL, Papakonstantinou T, Nikolakopoulou A, Rücker G, Galla T (2022). Network meta-analysis and
random walks. Stat Med 41:2091-114.
Papakonstantinou T, Nikolakopoulou A, Rücker G et al. (2018). Estimating the contribution of studies
in network meta-analysis: paths, flows and streams. F1000Research 7:610.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from follicle.synthesis.nma._graph import full_incidence
from follicle.synthesis.nma._model import laplacian_pinv
from follicle.synthesis.nma.fit import Model, NetworkMetaAnalysis


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n - 1) for j in range(i + 1, n)]


def aggregated_hat(res: NetworkMetaAnalysis, model: Model = "random") -> np.ndarray:
    """Hat matrix of the comparison-level model: rows all n(n-1)/2 pairs, columns the same pairs (0 if no direct)."""
    net = res.network
    n = net.n
    pairs = _pairs(n)
    w_adj = 1.0 / res.model(model).se_adj ** 2
    w = np.zeros(len(pairs))
    col = {p: k for k, p in enumerate(pairs)}
    for i, j, wk in zip(net.pos1, net.pos2, w_adj):
        w[col[(min(i, j), max(i, j))]] += wk
    direct = np.flatnonzero(w > 0)
    b_full = full_incidence(n)
    b = b_full[direct]
    lplus = laplacian_pinv(b.T @ (w[direct][:, None] * b))
    h = np.zeros((len(pairs), len(pairs)))
    h[:, direct] = b_full @ lplus @ b.T * w[direct][None, :]
    return h


def contribution_matrix(res: NetworkMetaAnalysis, model: Model = "random") -> pd.DataFrame:
    """Proportion contribution of each direct comparison (columns) to each network estimate (rows)."""
    n = len(res.treatments)
    pairs = _pairs(n)
    col = {p: k for k, p in enumerate(pairs)}
    h = aggregated_hat(res, model)
    direct_cols = np.flatnonzero(np.any(h != 0, axis=0))
    out = np.zeros((len(pairs), len(pairs)))
    for r, (src, sink) in enumerate(pairs):
        flow = np.zeros((n, n))
        for (i, j), k in col.items():
            flow[i, j], flow[j, i] = h[r, k], -h[r, k]
        flow[flow <= 1e-12] = 0.0
        trans = np.zeros((n, n))
        sums = flow.sum(axis=1)
        nz = sums > 0
        trans[nz] = flow[nz] / sums[nz][:, None]
        trans[sink] = 0.0
        # forward[l, v]: probability of being at v after l steps; backward[m, v]: of reaching the sink in m steps
        forward = np.zeros((n, n))
        forward[0, src] = 1.0
        for step in range(1, n):
            forward[step] = forward[step - 1] @ trans
        backward = np.zeros((n, n))
        backward[0, sink] = 1.0
        for step in range(1, n):
            backward[step] = trans @ backward[step - 1]
        lengths = np.arange(n)
        for u in range(n):
            for v in range(n):
                if trans[u, v] <= 0:
                    continue
                weight = 1.0 / (lengths[:, None] + 1 + lengths[None, :])
                c = trans[u, v] * float(forward[:, u] @ weight @ backward[:, v])
                out[r, col[(min(u, v), max(u, v))]] += c
    names = [f"{res.treatments[i]}:{res.treatments[j]}" for i, j in pairs]
    return pd.DataFrame(out[:, direct_cols], index=names, columns=[names[k] for k in direct_cols])


def study_contributions(res: NetworkMetaAnalysis, model: Model = "random") -> pd.DataFrame:
    """Proportion contribution of each study (columns) to each network estimate (rows); rows sum to 1."""
    net = res.network
    cm = contribution_matrix(res, model)
    w_adj = 1.0 / res.model(model).se_adj ** 2
    comp = [f"{a}:{b}" for a, b in zip(net.treat1, net.treat2)]
    rows = pd.DataFrame({"study": net.study, "comparison": comp, "w": w_adj})
    share = rows["w"] / rows.groupby("comparison")["w"].transform("sum")
    studies = net.studies
    out = pd.DataFrame(0.0, index=cm.index, columns=studies)
    for s, c, f in zip(rows["study"], rows["comparison"], share):
        out[s] += cm[c] * f
    return out
