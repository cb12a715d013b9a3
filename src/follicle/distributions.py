"""Normal and chi-squared distribution functions, and average ranks, without ``scipy.stats``.

``scipy.stats`` takes about half a second to import (a third of a ``follicle run`` process's
imports) for the few functions the study pipeline needs. These are the very functions
``scipy.stats.norm`` and ``scipy.stats.chi2`` evaluate (``scipy.special``'s ``ndtr``, ``ndtri``,
``chdtrc``, ``gammaincinv``, the Boost beta quantile), so the numbers are the same to the last bit
(tested). The rarely used binomial test still imports ``scipy.stats`` where it is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special
from scipy.special import _ufuncs


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


def norm_cdf(x: Any) -> Any:
    """Standard normal CDF (``scipy.stats.norm.cdf``)."""
    return special.ndtr(_arr(x))


def norm_sf(x: Any) -> Any:
    """Standard normal survival function, 1 - CDF computed without cancellation (``norm.sf``)."""
    return special.ndtr(-_arr(x))


def norm_ppf(q: Any) -> Any:
    """Standard normal quantile (``scipy.stats.norm.ppf``)."""
    return special.ndtri(_arr(q))


def chi2_sf(x: Any, df: Any) -> Any:
    """Chi-squared survival function (``scipy.stats.chi2.sf``; 1 below 0)."""
    return special.chdtrc(_arr(df), np.maximum(_arr(x), 0.0))


def chi2_ppf(q: Any, df: Any) -> Any:
    """Chi-squared quantile (``scipy.stats.chi2.ppf``)."""
    return 2 * special.gammaincinv(_arr(df) / 2, _arr(q))


def beta_ppf(q: Any, a: Any, b: Any) -> Any:
    """Beta quantile (``scipy.stats.beta.ppf``: the same Boost-based ufunc of ``scipy.special``)."""
    return _ufuncs._beta_ppf(_arr(q), _arr(a), _arr(b))


def rank_average(values: Any) -> np.ndarray:
    """Ranks 1..n of *values*, ties given their average rank (``scipy.stats.rankdata``, "average")."""
    arr = np.ravel(np.asarray(values))
    sorter = np.argsort(arr, kind="mergesort")
    inv = np.empty(sorter.size, dtype=np.intp)
    inv[sorter] = np.arange(sorter.size, dtype=np.intp)
    arr = arr[sorter]
    obs = np.r_[True, arr[1:] != arr[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)
