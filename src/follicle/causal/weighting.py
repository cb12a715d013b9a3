"""Inverse probability of treatment weights (IPTW): ATE or ATT, stabilised, truncated.

ATE: treated 1/e, untreated 1/(1-e); stabilised by the marginal share, P/e and (1-P)/(1-e).
ATT: treated 1, untreated e/(1-e); stabilised by multiplying the untreated by (1-P)/P, so the
untreated weights sum to about the number of treated. Truncation caps the weights at the given
lower and upper percentiles (Cole & Hernan 2008).

References
----------
Austin PC, Stuart EA. Moving towards best practice when using inverse probability of treatment
weighting (IPTW) using the propensity score. Stat Med 2015;34:3661-3679.
Cole SR, Hernan MA. Constructing inverse probability weights for marginal structural models.
Am J Epidemiol 2008;168:656-664.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from follicle.causal._validate import as_ps, as_treatment
from follicle.errors import InputError


def ipw_weights(ps: Any, t: Any, *, estimand: Literal["ate", "att"] = "ate", stabilized: bool = True,
                truncate: tuple[float, float] | None = None) -> np.ndarray:
    """IPT weights for each unit.

    Parameters
    ----------
    ps : propensity scores in (0, 1).
    t : treatment indicator (0/1).
    estimand : ``"ate"`` (whole population) or ``"att"`` (the treated).
    stabilized : multiply by the marginal treatment probabilities (Robins 2000).
    truncate : (lower, upper) percentiles in [0, 100], e.g. (1, 99); weights outside are set to them.
    """
    tr = as_treatment(t)
    e = as_ps(ps, n=tr.shape[0])
    if estimand not in ("ate", "att"):
        raise InputError(f"The 'estimand' parameter must be 'ate' or 'att'. Got {estimand!r} instead.")
    share = tr.mean()
    if estimand == "ate":
        w = np.where(tr, 1.0 / e, 1.0 / (1.0 - e))
        if stabilized:
            w = w * np.where(tr, share, 1.0 - share)
    else:
        w = np.where(tr, 1.0, e / (1.0 - e))
        if stabilized:
            w = np.where(tr, 1.0, w * (1.0 - share) / share)
    if truncate is not None:
        lo, hi = truncate
        if not 0 <= lo < hi <= 100:
            raise InputError(f"The 'truncate' parameter must be (lower, upper) percentiles with "
                             f"0 <= lower < upper <= 100. Got {truncate!r} instead.")
        w = np.clip(w, *np.percentile(w, [lo, hi]))
    return w


def effective_sample_size(w: Any) -> float:
    """Kish's effective sample size, (sum w)^2 / sum w^2."""
    arr = np.asarray(w, dtype=float)
    return float(arr.sum() ** 2 / (arr * arr).sum())
