"""Study-level effect sizes from arm-level data, computed as metafor's ``escalc`` does.

Every function returns an :class:`EffectSizes` holding the estimates ``yi`` (log scale for
ratio measures), their sampling variances ``vi`` and the study labels, plus the (uncorrected)
2x2 tables for binary data so Mantel-Haenszel and Peto pooling can use them.

Defaults mirror metafor 3.8 ``escalc``/``rma.uni``: ``add=0.5`` is added to every cell of a
table that has a zero cell (``to="only0"``); double-zero tables (no events, or only events,
in both arms) are kept with the correction (``drop00=False``).  ``rma.mh``/``rma.peto``
default to ``drop00=True`` for the study-level values; :func:`follicle.synthesis.pooling.meta_analysis`
passes that default on for those methods.

References
----------
Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw 2010;36(3).
Hedges LV. Distribution theory for Glass's estimator of effect size. J Educ Stat 1981;6:107-28.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.special import gammaln

BINARY_MEASURES = ("OR", "RR", "RD", "PETO")
CONTINUOUS_MEASURES = ("MD", "SMD")
RATIO_MEASURES = ("OR", "RR", "PETO", "PLO")
ContinuityTo = Literal["only0", "all", "if0all", "none"]


@dataclass(frozen=True)
class EffectSizes:
    """Study estimates ``yi`` and variances ``vi`` on the analysis scale (log for OR/RR)."""

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    labels: list[str]
    # Binary data only: the uncorrected 2x2 tables of the studies kept (for MH / Peto).
    tables: np.ndarray | None = None
    # Labels of studies dropped (double-zero tables with drop00=True).
    dropped: list[str] = field(default_factory=list)
    ni: np.ndarray | None = None
    # Every study given, in input order (kept and dropped); None means labels + dropped.
    input_labels: list[str] | None = None

    @property
    def k(self) -> int:
        return int(self.yi.size)

    @property
    def all_labels(self) -> list[str]:
        """The studies kept and dropped, in input order."""
        if self.input_labels is None:
            return list(self.labels) + list(self.dropped)
        keep = set(self.labels) | set(self.dropped)
        return [lab for lab in self.input_labels if lab in keep]

    @property
    def sei(self) -> np.ndarray:
        return np.sqrt(self.vi)

    @property
    def is_ratio(self) -> bool:
        return self.measure in ("OR", "RR", "PETO")

    def subset(self, mask: np.ndarray) -> EffectSizes:
        """The studies where *mask* is true (boolean array over the studies kept)."""
        mask = np.asarray(mask, dtype=bool)
        return EffectSizes(
            measure=self.measure,
            yi=self.yi[mask],
            vi=self.vi[mask],
            labels=[lab for lab, m in zip(self.labels, mask) if m],
            tables=None if self.tables is None else self.tables[mask],
            dropped=list(self.dropped),
            ni=None if self.ni is None else self.ni[mask],
            input_labels=self.input_labels,
        )


def _as_float(x: object) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def _labels(labels: list[str] | None, k: int) -> list[str]:
    return [str(x) for x in labels] if labels is not None else [f"Study {i + 1}" for i in range(k)]


def binary_effects(
    events_t: object,
    total_t: object,
    events_c: object,
    total_c: object,
    *,
    measure: str = "OR",
    labels: list[str] | None = None,
    add: float = 0.5,
    to: ContinuityTo = "only0",
    drop00: bool = False,
) -> EffectSizes:
    """Log odds ratio, log risk ratio, risk difference or Peto log OR per study.

    Parameters
    ----------
    events_t, total_t, events_c, total_c : array-like
        Events and arm sizes, treatment (t) and control (c).
    measure : {"OR", "RR", "RD", "PETO"}
    labels : list of str, optional
        Study names (default: "Study 1", "Study 2", ...).
    add, to : continuity correction, as metafor: *add* to every cell of the tables chosen by
        *to* ("only0": tables with a zero cell; "all"; "if0all": all tables if any has a zero
        cell; "none").
    drop00 : drop tables with no events (or only events) in both arms.

    Returns
    -------
    EffectSizes
        ``yi`` (log OR/RR, RD) and ``vi`` per study, with labels and the tables.

    Notes
    -----
    Variances: OR ``1/a+1/b+1/c+1/d``; RR ``1/a-1/n1+1/c-1/n2``; RD the large-sample
    ``p1(1-p1)/n1 + p2(1-p2)/n2`` (metafor ``vtype="LS"``); Peto ``1/V`` with the
    hypergeometric variance V (Yusuf et al. 1985).
    """
    if measure not in BINARY_MEASURES:
        raise ValueError(f"The 'measure' parameter must be one of {BINARY_MEASURES}. Got {measure!r} instead.")
    if to not in ("only0", "all", "if0all", "none"):
        raise ValueError(f"The 'to' parameter must be only0, all, if0all or none. Got {to!r} instead.")
    a, n1, c, n2 = (_as_float(x) for x in (events_t, total_t, events_c, total_c))
    b, d = n1 - a, n2 - c
    k = a.size
    labs = _labels(labels, k)
    keep = np.ones(k, dtype=bool)
    if drop00:
        keep = ~(((a == 0) & (c == 0)) | ((b == 0) & (d == 0)))
    dropped = [lab for lab, kp in zip(labs, keep) if not kp]
    raw = np.column_stack([a, b, c, d])[keep]
    a, b, c, d = (raw[:, j].copy() for j in range(4))
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    if to == "all":
        sel = np.ones_like(zero)
    elif to == "only0":
        sel = zero
    elif to == "if0all":
        sel = np.full_like(zero, zero.any())
    else:
        sel = np.zeros_like(zero)
    a, b, c, d = (x + add * sel for x in (a, b, c, d))
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
        elif measure == "RD":
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        else:  # PETO
            n = n1 + n2
            xt, yt = a + c, b + d
            e = xt * n1 / n
            v = xt * yt * (n1 / n) * (n2 / n) / (n - 1)
            yi = (a - e) / v
            vi = 1 / v
    return EffectSizes(
        measure=measure,
        yi=yi,
        vi=vi,
        labels=[lab for lab, kp in zip(labs, keep) if kp],
        tables=raw,
        dropped=dropped,
        ni=raw.sum(axis=1),
        input_labels=labs,
    )


def hedges_correction(df: np.ndarray) -> np.ndarray:
    """Exact small-sample bias correction J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)) (Hedges 1981)."""
    df = np.asarray(df, dtype=float)
    return np.exp(gammaln(df / 2) - 0.5 * np.log(df / 2) - gammaln((df - 1) / 2))


def continuous_effects(
    mean_t: object,
    sd_t: object,
    n_t: object,
    mean_c: object,
    sd_c: object,
    n_c: object,
    *,
    measure: str = "MD",
    labels: list[str] | None = None,
) -> EffectSizes:
    """Mean difference or standardized mean difference (Hedges' g) per study.

    MD variance ``sd1^2/n1 + sd2^2/n2``; SMD ``g = J(n1+n2-2) (m1-m2)/s_pooled`` with variance
    ``1/n1 + 1/n2 + g^2/(2(n1+n2))`` (metafor ``vtype="LS"``; Hedges 1981).
    """
    if measure not in CONTINUOUS_MEASURES:
        raise ValueError(
            f"The 'measure' parameter must be one of {CONTINUOUS_MEASURES}. Got {measure!r} instead."
        )
    m1, s1, n1, m2, s2, n2 = (_as_float(x) for x in (mean_t, sd_t, n_t, mean_c, sd_c, n_c))
    if measure == "MD":
        yi = m1 - m2
        vi = s1**2 / n1 + s2**2 / n2
    else:
        df = n1 + n2 - 2
        sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / df)
        yi = hedges_correction(df) * (m1 - m2) / sp
        vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
    return EffectSizes(measure=measure, yi=yi, vi=vi, labels=_labels(labels, m1.size), ni=n1 + n2)


def generic_effects(
    estimate: object, se: object, *, labels: list[str] | None = None, measure: str = "GEN"
) -> EffectSizes:
    """Generic inverse variance: given estimates and standard errors (log scale for ratios).

    Parameters
    ----------
    estimate, se : array-like
        One estimate and its standard error per study.
    labels : list of str, optional
        Study names.
    measure : str
        ``"OR"``, ``"RR"`` or ``"HR"`` to have results exponentiated (estimates must then be
        logs); ``"GEN"`` for any other scale.

    Returns
    -------
    EffectSizes
        ``yi`` = *estimate*, ``vi`` = *se* squared.
    """
    yi, se_ = _as_float(estimate), _as_float(se)
    return EffectSizes(measure=measure, yi=yi, vi=se_**2, labels=_labels(labels, yi.size))


def proportion_effects(
    events: object,
    total: object,
    *,
    labels: list[str] | None = None,
    add: float = 0.5,
    to: ContinuityTo = "only0",
) -> EffectSizes:
    """Logit of a single proportion per study (metafor measure "PLO") for single-arm studies.

    ``yi = log(p/(1-p))``, ``vi = 1/x + 1/(n-x)``; *add* goes to events and non-events of the
    studies chosen by *to* (with 0 or n events under "only0").
    """
    x, n = _as_float(events), _as_float(total)
    m = n - x
    zero = (x == 0) | (m == 0)
    sel = {"all": np.ones_like(zero), "only0": zero, "if0all": np.full_like(zero, zero.any())}.get(
        to, np.zeros_like(zero)
    )
    x, m = x + add * sel, m + add * sel
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(x / m)
        vi = 1 / x + 1 / m
    return EffectSizes(measure="PLO", yi=yi, vi=vi, labels=_labels(labels, x.size), ni=n)
