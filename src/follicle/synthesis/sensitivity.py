"""Sensitivity analyses: leave-one-out, cumulative meta-analysis, and subgroups.

The test for subgroup differences is the between-subgroup Q of the subgroup estimates
(inverse-variance weights 1/se_g^2, df = G - 1), as RevMan and the Cochrane Handbook
(section 10.11.3.1) describe; each subgroup keeps its own tau^2 (Borenstein et al. 2009, ch. 19).

References
----------
Borenstein M, Hedges LV, Higgins JPT, Rothstein HR. Introduction to Meta-Analysis. Wiley 2009.
Deeks JJ, Higgins JPT, Altman DG (eds). Cochrane Handbook for Systematic Reviews of
    Interventions v6.4, chapter 10: Analysing data and undertaking meta-analyses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import chi2

from follicle.synthesis.effect_sizes import EffectSizes
from follicle.synthesis.pooling import MetaResult, meta_analysis

_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "pval", "tau2", "i2", "q", "q_p", "k"]


def _row(label: str, res: MetaResult) -> dict[str, object]:
    note = "; ".join(f"{part} not estimable: {why}" for part, why in res.not_estimable.items() if part == "estimate")
    return {"study": label} | {c: getattr(res, c) for c in _COLUMNS} | {"note": note}


def leave_one_out(effects: EffectSizes, **kwargs: object) -> pd.DataFrame:
    """Refit without each study in turn; one row per omitted study (``study`` = the one left out).

    As metafor's ``leave1out``: k >= 2 (each refit may have k = 1); a refit that fails gives a
    row of NaN with the reason in ``note`` instead of stopping the others.
    """
    if effects.k < 2:
        raise ValueError(f"leave-one-out needs at least 2 studies; got k = {effects.k}.")
    rows = []
    for i, lab in enumerate(effects.labels):
        mask = np.ones(effects.k, bool)
        mask[i] = False
        try:
            rows.append(_row(lab, meta_analysis(effects.subset(mask), qprofile=False, **kwargs)))  # type: ignore[arg-type]
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            rows.append({"study": lab} | {c: float("nan") for c in _COLUMNS} | {"note": f"refit failed: {exc}"})
    return pd.DataFrame(rows)


def cumulative(effects: EffectSizes, order: Sequence[int] | None = None, **kwargs: object) -> pd.DataFrame:
    """Add studies one at a time (in *order*, default as given); row i pools the first i+1 studies."""
    idx = list(range(effects.k)) if order is None else list(order)
    rows = []
    for j in range(2, len(idx) + 1):
        mask = np.zeros(effects.k, bool)
        mask[idx[:j]] = True
        rows.append(_row(effects.labels[idx[j - 1]], meta_analysis(effects.subset(mask), qprofile=False,  # type: ignore[arg-type]
                                                                   **kwargs)))
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SubgroupResult:
    groups: dict[str, MetaResult]
    q_between: float
    df: int
    pval: float
    singletons: dict[str, int] = field(default_factory=dict)  # groups with one study: index into effects

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([_row(g, r) for g, r in self.groups.items()]).rename(columns={"study": "subgroup"})


def subgroups(effects: EffectSizes, groups: Sequence[str], **kwargs: object) -> SubgroupResult:
    """Pool within each subgroup and test for differences between subgroups.

    A subgroup with a single study enters the test with that study's own estimate and
    standard error (no pooling possible) and is listed in ``singletons``.
    """
    g = np.asarray([str(x) for x in groups])
    if g.size != effects.k:
        raise ValueError(f"groups has {g.size} labels for {effects.k} studies")
    est, var = [], []
    fitted: dict[str, MetaResult] = {}
    single: dict[str, int] = {}
    for name in dict.fromkeys(g):  # first-seen order
        mask = g == name
        if mask.sum() == 1:
            i = int(np.flatnonzero(mask)[0])
            single[name] = i
            est.append(float(effects.yi[i]))
            var.append(float(effects.vi[i]))
            continue
        res = meta_analysis(effects.subset(mask), **kwargs)  # type: ignore[arg-type]
        fitted[name] = res
        est.append(res.estimate)
        var.append(res.se**2)
    e, v = np.asarray(est), np.asarray(var)
    w = 1 / v
    mu = np.sum(w * e) / w.sum()
    q = float(np.sum(w * (e - mu) ** 2))
    df = e.size - 1
    return SubgroupResult(groups=fitted, q_between=q, df=df, pval=float(chi2.sf(q, df)) if df > 0 else float("nan"),
                          singletons=single)
