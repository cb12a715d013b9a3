"""Greedy nearest-neighbour propensity-score matching without replacement, with a caliper.

The caliper is applied on the logit of the propensity score in units of its pooled standard
deviation by default (Austin 2011 recommends 0.2; TriNetX uses 0.1, OHDSI CohortMethod 0.2).
Two greedy orders are offered: treated units in random order with a seed (TriNetX), or the
closest remaining pair first (OHDSI CohortMethod; deterministic). 1:k matching runs k passes,
each giving every still-matched treated unit at most one more control; with ``variable_ratio``
treated units keep the 1..k controls they got, otherwise only complete 1:k sets are kept.
Both orders run in O(n log n) (see :mod:`follicle.causal._greedy`); up to
:data:`~follicle.causal._greedy_py.PLAIN_MAX_UNITS` units in plain Python (no compilation at a
user's first run), above it compiled with numba.

References
----------
Austin PC. Optimal caliper widths for propensity-score matching when estimating differences in
means and differences in proportions in observational studies. Pharm Stat 2011;10:150-161.
Austin PC. A comparison of 12 algorithms for matching on the propensity score. Stat Med
2014;33:1057-1069.
Rassen JA et al. One-to-many propensity score matching in cohort studies. Pharmacoepidemiol
Drug Saf 2012;21(S2):69-80 (variable-ratio matching).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from follicle.causal import _greedy_py
from follicle.causal._validate import as_ps, as_treatment
from follicle.errors import InputError

CaliperScale = Literal["std_logit", "logit", "ps"]
MatchOrder = Literal["random", "closest"]


@dataclass(frozen=True)
class MatchResult:
    """Matched sets from :func:`match`; positions index the arrays passed to ``match``.

    One row per (treated, control) pair: ``treated[i]`` and ``control[i]`` belong to matched set
    ``set_id[i]`` (one set per treated unit; use it as the cluster for robust standard errors or
    the stratum of a stratified Cox model).
    """

    treated: np.ndarray
    control: np.ndarray
    set_id: np.ndarray
    distance: np.ndarray
    n: int
    n_treated: int
    n_control: int
    caliper_width: float
    pooled_sd_logit: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return int(self.treated.shape[0])

    @property
    def n_treated_matched(self) -> int:
        return int(np.unique(self.treated).shape[0])

    @property
    def n_control_matched(self) -> int:
        return int(self.control.shape[0])

    def index(self) -> np.ndarray:
        """Sorted positions of every matched unit (treated and control)."""
        return np.sort(np.concatenate([np.unique(self.treated), self.control]))

    def set_ids(self) -> np.ndarray:
        """Matched-set id for every input unit; -1 for units left unmatched."""
        out = np.full(self.n, -1, np.int64)
        out[self.treated] = self.set_id
        out[self.control] = self.set_id
        return out

    def weights(self) -> np.ndarray:
        """ATT matching weights for every unit: treated 1, a control 1/(controls in its set), else 0."""
        w = np.zeros(self.n)
        if self.n_pairs:
            sizes = np.bincount(self.set_id)
            w[self.treated] = 1.0
            w[self.control] = 1.0 / sizes[self.set_id]
        return w

    def pairs(self) -> pd.DataFrame:
        """One row per (treated, control) pair: set_id, treated, control, distance."""
        return pd.DataFrame({"set_id": self.set_id, "treated": self.treated,
                             "control": self.control, "distance": self.distance})

    def counts(self) -> dict[str, Any]:
        """Counts before and after matching (attrition), plus the caliper actually used."""
        return {"n_treated": self.n_treated, "n_control": self.n_control,
                "n_treated_matched": self.n_treated_matched, "n_control_matched": self.n_control_matched,
                "n_pairs": self.n_pairs, "caliper_width": self.caliper_width,
                "pooled_sd_logit": self.pooled_sd_logit}


def pooled_sd_logit(ps: np.ndarray, t: np.ndarray) -> float:
    """Pooled SD of logit(PS): sqrt((var_treated + var_control) / 2), each with ddof=1 (Austin 2011)."""
    tr = np.asarray(t, dtype=bool)
    return _pooled_sd(np.log(ps) - np.log1p(-ps), tr)


def _pooled_sd(lg: np.ndarray, t: np.ndarray) -> float:
    n1 = int(t.sum())
    n0 = t.shape[0] - n1
    vt = np.var(lg[t], ddof=1) if n1 > 1 else 0.0
    vc = np.var(lg[~t], ddof=1) if n0 > 1 else 0.0
    return float(math.sqrt((vt + vc) / 2.0))


def _check_settings(caliper: float | None, caliper_scale: str, ratio: int, order: str) -> list[str]:
    problems = []
    if caliper is not None and not (isinstance(caliper, (int, float)) and caliper > 0):
        problems.append(f"The 'caliper' parameter must be > 0 (or None for no caliper). Got {caliper!r} instead.")
    if caliper_scale not in ("std_logit", "logit", "ps"):
        problems.append("The 'caliper_scale' parameter must be one of 'std_logit', 'logit', 'ps'. "
                        f"Got {caliper_scale!r} instead.")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        problems.append(f"The 'ratio' parameter must be an integer >= 1. Got {ratio!r} instead.")
    if order not in ("random", "closest"):
        problems.append(f"The 'order' parameter must be 'random' or 'closest'. Got {order!r} instead.")
    return problems


def match(ps: Any, t: Any, *, caliper: float | None = 0.1, caliper_scale: CaliperScale = "std_logit",
          ratio: int = 1, variable_ratio: bool = False, order: MatchOrder = "random",
          seed: int = 0) -> MatchResult:
    """Greedy nearest-neighbour matching on the propensity score, without replacement.

    Parameters
    ----------
    ps : array of propensity scores in (0, 1) (``[0, 1]`` allowed when ``caliper_scale="ps"``).
    t : array of treatment indicators (0/1 or bool), same length.
    caliper : maximum distance of a pair, in units given by ``caliper_scale``; None for no caliper.
    caliper_scale : ``"std_logit"`` (logit PS, caliper times its pooled SD), ``"logit"`` or ``"ps"``.
        Distances are measured on the logit scale unless ``"ps"``.
    ratio : controls per treated unit (1:k).
    variable_ratio : keep treated units with fewer than ``ratio`` controls (1..k); otherwise only
        complete sets are kept.
    order : ``"random"`` (treated in a random order drawn with ``seed``; TriNetX) or ``"closest"``
        (closest remaining pair first; OHDSI; ``seed`` unused).
    seed : seed of the random order.

    Returns
    -------
    MatchResult
    """
    problems = _check_settings(caliper, caliper_scale, ratio, order)
    if problems:
        raise InputError("invalid matching settings", problems=problems)
    tr = as_treatment(t)
    p = as_ps(ps, n=tr.shape[0], allow_bounds=caliper_scale == "ps")
    n = p.shape[0]
    x = p.copy() if caliper_scale == "ps" else np.log(p) - np.log1p(-p)
    sd = pooled_sd_logit(np.clip(p, 1e-15, 1 - 1e-15), tr) if caliper_scale == "ps" else _pooled_sd(x, tr)
    if caliper is None:
        width = math.inf
    elif caliper_scale == "std_logit":
        width = float(caliper) * sd
    else:
        width = float(caliper)
    k = int(ratio)
    if n <= _greedy_py.PLAIN_MAX_UNITS:
        closest_pairs, ordered_nearest = _greedy_py.closest_pairs, _greedy_py.ordered_nearest
    else:  # numba is imported (and its kernels compiled or loaded from its cache) only here
        from follicle.causal._greedy import closest_pairs, ordered_nearest
    treated_pos = np.flatnonzero(tr)
    got = np.full((n, k), -1, np.int64)  # controls per treated position, by pass
    if order == "closest":
        active = np.ones(n, np.bool_)
        for r in range(k):
            m = closest_pairs(x, tr, active, width)
            hit = m >= 0
            got[hit, r] = m[hit]
            active[m[hit]] = False  # controls used
            active[treated_pos[~hit[treated_pos]]] = False  # treated without a control stop
    else:
        rng = np.random.default_rng(seed)
        tord = rng.permutation(treated_pos).astype(np.int64)
        cpos = np.flatnonzero(~tr)
        controls = cpos[np.argsort(x[cpos], kind="stable")].astype(np.int64)
        used = np.zeros(controls.shape[0], np.bool_)
        for r in range(k):
            out = ordered_nearest(x, tord, controls, width, used)
            got[tord[out >= 0], r] = out[out >= 0]
            tord = tord[out >= 0]
    n_got = (got[treated_pos] >= 0).sum(axis=1)
    keep = n_got >= (1 if variable_ratio else k)
    kept_t = treated_pos[keep]
    sets = got[kept_t]
    t_col = np.repeat(kept_t, k)
    c_col = sets.ravel()
    s_col = np.repeat(np.arange(kept_t.shape[0], dtype=np.int64), k)
    ok = c_col >= 0
    t_col, c_col, s_col = t_col[ok], c_col[ok], s_col[ok]
    return MatchResult(
        treated=t_col, control=c_col, set_id=s_col, distance=np.abs(x[t_col] - x[c_col]),
        n=n, n_treated=int(tr.sum()), n_control=int((~tr).sum()), caliper_width=width,
        pooled_sd_logit=sd,
        settings={"caliper": caliper, "caliper_scale": caliper_scale, "ratio": k,
                  "variable_ratio": bool(variable_ratio), "order": order, "seed": seed},
    )


def matched_frame(data: pd.DataFrame, result: MatchResult) -> pd.DataFrame:
    """Rows of *data* that were matched, with ``set_id`` and ``match_weight`` columns added."""
    if len(data) != result.n:
        raise InputError(f"data has {len(data)} rows but the match was made on {result.n} units")
    idx = result.index()
    out = data.iloc[idx].copy()
    out["set_id"] = result.set_ids()[idx]
    out["match_weight"] = result.weights()[idx]
    return out
