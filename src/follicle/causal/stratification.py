"""Propensity-score stratification: strata at quantiles of the PS, with per-stratum counts.

Five strata at PS quintiles remove about 90% of the bias from a confounder (Cochran 1968;
Rosenbaum & Rubin 1984). Quantiles are taken over everyone, the treated or the untreated.

References
----------
Rosenbaum PR, Rubin DB. Reducing bias in observational studies using subclassification on the
propensity score. J Am Stat Assoc 1984;79:516-524.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from follicle.causal._validate import as_ps, as_treatment
from follicle.errors import InputError


def stratify(ps: Any, t: Any, *, n_strata: int = 5,
             base: Literal["all", "treated", "untreated"] = "all") -> np.ndarray:
    """Stratum (0..n_strata-1) of each unit, cut at PS quantiles of the *base* group."""
    tr = as_treatment(t)
    e = as_ps(ps, n=tr.shape[0], allow_bounds=True)
    if isinstance(n_strata, bool) or not isinstance(n_strata, (int, np.integer)) or n_strata < 1:
        raise InputError(f"The 'n_strata' parameter must be an integer >= 1. Got {n_strata!r} instead.")
    groups = {"all": np.ones_like(tr), "treated": tr, "untreated": ~tr}
    if base not in groups:
        raise InputError(f"The 'base' parameter must be 'all', 'treated' or 'untreated'. Got {base!r} instead.")
    cuts = np.quantile(e[groups[base]], np.linspace(0, 1, n_strata + 1)[1:-1])
    return np.searchsorted(cuts, e, side="right").astype(np.int64)


def strata_table(strata: Any, t: Any) -> pd.DataFrame:
    """Counts per stratum: stratum, n_treated, n_untreated (a stratum without both has no contrast)."""
    tr = as_treatment(t)
    s = np.asarray(strata)
    frame = pd.DataFrame({"stratum": s, "treated": tr})
    out = frame.groupby("stratum")["treated"].agg(n_treated="sum", n="size").reset_index()
    out["n_untreated"] = out["n"] - out["n_treated"]
    return out[["stratum", "n_treated", "n_untreated"]]


def stratum_weights(strata: Any, t: Any, *, estimand: Literal["ate", "att"] = "ate") -> np.ndarray:
    """Marginal mean weights from strata (Hong 2010): stratum-size times group-share ratios.

    ATE: w = n_s * P(group) / n_group,s; ATT: treated 1, untreated n_treated,s / n_untreated,s
    scaled by the overall untreated/treated ratio.
    """
    tr = as_treatment(t)
    s = np.asarray(strata)
    tab = strata_table(s, tr).set_index("stratum")
    n1 = tab["n_treated"].reindex(s).to_numpy(float)
    n0 = tab["n_untreated"].reindex(s).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if estimand == "ate":
            w = np.where(tr, (n1 + n0) * tr.mean() / n1, (n1 + n0) * (1 - tr.mean()) / n0)
        elif estimand == "att":
            w = np.where(tr, 1.0, n1 / n0 * (~tr).sum() / tr.sum())
        else:
            raise InputError(f"The 'estimand' parameter must be 'ate' or 'att'. Got {estimand!r} instead.")
    return np.where(np.isfinite(w), w, 0.0)
