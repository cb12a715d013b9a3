"""Peto's one-step odds ratio, as metafor's ``rma.peto``.

log OR = sum(O - E) / sum(V), se = 1/sqrt(sum V), with E and V the hypergeometric mean and
variance of the treated-arm events; Q = sum (O-E)^2/V - (sum(O-E))^2 / sum V over tables with V > 0.

References
----------
Yusuf S, Peto R, Lewis J, Collins R, Sleight P. Beta blockade during and after myocardial
    infarction: an overview of the randomized trials. Prog Cardiovasc Dis 1985;27:335-71.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PetoResult:
    estimate: float
    se: float
    q: float
    k_pos: int


def peto(tables: np.ndarray) -> PetoResult:
    """Pool 2x2 tables (columns a, b, c, d) with Peto's method (no continuity correction)."""
    t = np.asarray(tables, dtype=float)
    a, b, c, d = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
    n1, n2 = a + b, c + d
    N = n1 + n2
    xt, yt = a + c, b + d
    E = xt * n1 / N
    with np.errstate(invalid="ignore", divide="ignore"):
        V = xt * yt * (n1 / N) * (n2 / N) / (N - 1)
    V = np.where(np.isfinite(V), V, 0.0)
    sv = V.sum()
    if sv == 0:
        raise ValueError("Peto OR is undefined: every table has zero hypergeometric variance")
    est = np.sum(a - E) / sv
    pos = V > 0
    q = max(0.0, float(np.sum((a[pos] - E[pos]) ** 2 / V[pos]) - np.sum(a - E) ** 2 / V[pos].sum()))
    return PetoResult(estimate=float(est), se=float(1 / np.sqrt(sv)), q=q, k_pos=int(pos.sum()))
