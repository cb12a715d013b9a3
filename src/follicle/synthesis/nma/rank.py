"""Ranking and the league table.

* P-scores (netmeta ``netrank``; Rücker & Schwarzer 2015): the mean over all other treatments of the
  one-sided certainty that a treatment is better, Phi(+-(te_ij / se_ij)). No resampling.
* SUCRA (Salanti et al. 2011) by resampling the network estimates from their multivariate normal
  distribution (netmeta ``rankogram``): rank probabilities, then SUCRA = (n - mean rank) / (n - 1).
  Its expectation equals the P-score (Rücker & Schwarzer 2015), so the two differ only by Monte
  Carlo error; the seed makes it reproducible.
* League table (netmeta ``netleague``): network estimates in the lower triangle, direct (pairwise)
  estimates in the upper triangle, treatments on the diagonal.

References
----------
Rücker G, Schwarzer G (2015). Ranking treatments in frequentist network meta-analysis works without
resampling methods. BMC Med Res Methodol 15:58.
Salanti G, Ades AE, Ioannidis JPA (2011). Graphical methods and numerical summaries for presenting
results from multiple-treatment meta-analysis. J Clin Epidemiol 64:163-71.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from follicle.errors import InputError
from follicle.synthesis.nma.fit import Model, NetworkMetaAnalysis

Better = Literal["higher", "lower"]


def _sign(better: str) -> float:
    if better not in ("higher", "lower"):
        raise InputError(f"better must be 'higher' or 'lower'; got {better!r}")
    return 1.0 if better == "higher" else -1.0


def pscores(res: NetworkMetaAnalysis, model: Model = "random", better: Better = "higher") -> dict[str, float]:
    """P-score of each treatment (1 = certainly best, 0 = certainly worst)."""
    est = res.model(model)
    s = _sign(better)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = norm.cdf(s * est.te / est.se)
    np.fill_diagonal(p, np.nan)
    return {t: float(np.nanmean(p[i])) for i, t in enumerate(res.treatments)}


def rankogram(res: NetworkMetaAnalysis, model: Model = "random", better: Better = "higher", *,
              nsim: int = 10000, seed: int = 20) -> pd.DataFrame:
    """Rank probabilities (rows treatments, columns ranks 1..n, 1 = best) and SUCRA, by resampling."""
    if nsim < 1:
        raise InputError(f"nsim must be >= 1; got {nsim}")
    est = res.model(model)
    n = len(res.treatments)
    s = _sign(better)
    r = est.index(res.reference)
    mean = est.te[:, r] - np.mean(est.te[:, r])  # centred effects
    vals, vecs = np.linalg.eigh(est.cov_centred)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = np.random.default_rng(seed)
    draws = mean + rng.standard_normal((nsim, n)) @ root.T
    ranks = np.argsort(np.argsort(-s * draws, axis=1), axis=1) + 1
    probs = np.stack([(ranks == k).mean(axis=0) for k in range(1, n + 1)], axis=1)
    out = pd.DataFrame(probs, index=res.treatments, columns=[f"rank_{k}" for k in range(1, n + 1)])
    out["mean_rank"] = ranks.mean(axis=0)
    out["sucra"] = (n - out["mean_rank"]) / (n - 1) if n > 1 else 1.0
    return out


def league_table(res: NetworkMetaAnalysis, model: Model = "random", *, order: list[str] | None = None,
                 digits: int = 2) -> pd.DataFrame:
    """Square table of text cells: lower triangle network estimates (row vs column), upper triangle direct.

    Cell (row r, column c) is the effect of treatment r versus treatment c, with its confidence
    interval, back-transformed for ratio measures; the upper triangle shows the direct estimate of the
    same contrast (row vs column) where studies compared the pair, else ".".
    """
    est = res.model(model)
    order = order or list(res.treatments)
    idx = [est.index(t) for t in order]
    z = norm.isf((1 - res.level) / 2)
    tr = np.exp if res.is_ratio else (lambda v: v)

    def cell(te: float, se: float) -> str:
        if not np.isfinite(te):
            return "."
        return f"{tr(te):.{digits}f} ({tr(te - z * se):.{digits}f} to {tr(te + z * se):.{digits}f})"

    rows = []
    for a, i in enumerate(idx):
        row = []
        for b, j in enumerate(idx):
            if a == b:
                row.append(order[a])
            elif a > b:
                row.append(cell(est.te[i, j], est.se[i, j]))
            else:
                row.append(cell(est.direct_te[i, j], est.direct_se[i, j]))
        rows.append(row)
    return pd.DataFrame(rows, index=order, columns=order)
