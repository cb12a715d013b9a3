"""Small-cell protection for everything that leaves the machine (one set of rules, used everywhere).

A count from 1 to ``min_cell_count - 1`` (k) is a *small cell*. The rules make sure that no small
cell can be computed back from what is published, not only that none is printed:

1. **Counts.** 0 and counts >= k are shown; 1..k-1 as ``"<k"`` (:func:`suppress_count`).
2. **Nested counts** (attrition steps of a cohort, the arm before and after matching, the arm at
   risk of an outcome): a count is shown only if its difference from the previous shown count of
   the same chain is 0 or >= k; otherwise it is withheld (complementary suppression,
   :func:`protect_chain`). Then every difference of two shown counts in a chain is 0 or >= k.
3. **Proportions** (Table 1 percentages, risks, rates, SMDs): shown only when the count and its
   complement (x and n - x) are both 0 or >= k, and, for a subset (after matching), the
   differences from the superset's counts too (:func:`proportion_publishable`). An estimate whose
   numerator or denominator is withheld is withheld with it.
4. **Curves** (Kaplan-Meier steps and numbers at risk): computed from cumulative event and
   censoring counts rounded up to multiples of k (:func:`protect_km`, the method of the OpenSAFELY
   ``kaplan-meier-function`` action), so each published step is 0 or >= k events over a number at
   risk that is a multiple of k: step x at-risk, or a difference of two numbers at risk, gives
   back only multiples of k, never the true small counts.
   **Histograms** (preference-score distributions): counts per bin rounded up to multiples of k
   (:func:`protect_histogram`), so no bin, nor a difference of bins, gives back a small count; a
   weighted histogram (IPTW) is the rounded count times the bin's mean weight, never a weighted
   sum that a small count's own weights could be read from.
5. **Test statistics** ((O-E)^2/E, log-rank and Cox tests): shown only when every count they are
   built from (events and non-events per group) is shown.
6. ``min_cell_count`` below :data:`SMALL_CELL_FLOOR` (5) needs an explicit flag and puts a
   warning in the output and report (:func:`check_min_cell_count`).

docs/privacy.md explains the design; tests/test_privacy_attacker.py attacks it.

References
----------
OpenSAFELY kaplan-meier-function (rounded KM estimates), https://github.com/opensafely-actions/kaplan-meier-function.
Hundepool A et al. Statistical Disclosure Control. Wiley 2012, ch. 4-5 (primary and complementary
cell suppression; differencing attacks on nested tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from follicle.distributions import norm_ppf
from follicle.errors import InputError

DEFAULT_MIN_CELL_COUNT = 10
#: Below this, a min_cell_count needs an explicit flag (``--allow-small-cells``) and a warning.
SMALL_CELL_FLOOR = 5
#: Text of a published figure withheld because it would reveal a small cell.
WITHHELD = None


def suppressed_label(min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> str:
    """The text written in place of a small count, e.g. ``"<10"``."""
    return f"<{min_cell_count}"


def is_small(count: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> bool:
    """True when *count* is a positive count below the threshold (and must not leave the machine)."""
    if count is None or isinstance(count, (str, bool, np.bool_)):
        return False
    try:
        value = float(count)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(value) and 0 < value < min_cell_count)


def safe_gap(a: Any, b: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> bool:
    """True when the difference of two counts is 0 or >= the threshold (or cannot be formed)."""
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return True
    return not is_small(abs(float(a) - float(b)), min_cell_count)


def suppress_count(count: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> Any:
    """*count* unchanged (numpy integers as int), or the label when it is a small positive count."""
    if is_small(count, min_cell_count):
        return suppressed_label(min_cell_count)
    if isinstance(count, np.integer):
        return int(count)
    return count


def suppress_counts(obj: Any, count_keys: Iterable[str], min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> Any:
    """A copy of the JSON-like *obj* with every small count under a key in *count_keys* suppressed.

    A count key may hold one count or a list of counts (e.g. numbers at risk); estimates under
    other keys are left as they are.
    """
    keys = set(count_keys)

    def one(value: Any) -> Any:
        return [one(v) for v in value] if isinstance(value, list) else suppress_count(value, min_cell_count)

    if isinstance(obj, dict):
        return {k: one(v) if k in keys else suppress_counts(v, keys, min_cell_count) for k, v in obj.items()}
    if isinstance(obj, list):
        return [suppress_counts(v, keys, min_cell_count) for v in obj]
    return obj


def protect_chain(counts: Sequence[Any], min_cell_count: int = DEFAULT_MIN_CELL_COUNT,
                  anchor: Any = None) -> list[Any]:
    """Publishable values of a chain of nested counts (each a subset of the one before).

    Walks from the first count: a small count becomes ``"<k"``; another count is shown when its
    difference from the last shown count (*anchor* to start with) is 0 or >= k, and withheld
    (``None``) otherwise. Every difference of two shown counts is then 0 or >= k. A ``None`` or
    text in *counts* (already withheld upstream) stays as it is.
    """
    out: list[Any] = []
    for c in counts:
        if c is None or isinstance(c, str):
            out.append(c)
        elif is_small(c, min_cell_count):
            out.append(suppressed_label(min_cell_count))
        elif anchor is None or safe_gap(anchor, c, min_cell_count):
            value = int(c)
            out.append(value)
            anchor = value
        else:
            out.append(WITHHELD)
    return out


def last_shown(values: Sequence[Any]) -> Any:
    """The last exact (int) value of a protected chain, or None."""
    for v in reversed(values):
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return int(v)
    return None


def proportion_publishable(x: Any, n: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT, *,
                           superset: tuple[Any, Any] | None = None) -> bool:
    """Can x/n be shown? x and n - x must be 0 or >= k; with ``superset=(x0, n0)`` (the same
    proportion in a population that holds this one), x0 - x and (n0 - x0) - (n - x) too."""
    if x is None or n is None or isinstance(x, str) or isinstance(n, str):
        return False
    x, n = float(x), float(n)
    if is_small(x, min_cell_count) or is_small(n - x, min_cell_count) or is_small(n, min_cell_count):
        return False
    if superset is not None:
        x0, n0 = superset
        if x0 is None or n0 is None:
            return True
        if is_small(float(x0) - x, min_cell_count) or is_small((float(n0) - float(x0)) - (n - x), min_cell_count):
            return False
    return True


def events_publishable(n: Any, events: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> bool:
    """Events of a group can be shown with estimates built on them (risk, rate, test statistics)
    when the events and the non-events are 0 or >= k and n is shown."""
    return proportion_publishable(events, n, min_cell_count)


def round_up(x: np.ndarray, base: int) -> np.ndarray:
    """Round counts up to a multiple of *base* (0 stays 0)."""
    return np.ceil(np.asarray(x, dtype=float) / base) * base


def protect_km(table: pd.DataFrame, min_cell_count: int = DEFAULT_MIN_CELL_COUNT, *,
               conf_level: float = 0.95) -> pd.DataFrame:
    """A Kaplan-Meier table rebuilt from rounded counts (rule 4 of the module docstring).

    *table* has one row per distinct time with ``time, n_risk, n_event, n_censor`` (as
    :class:`follicle.survival.KaplanMeierResult.table`). The cumulative events and censorings are
    rounded up to multiples of k, the number at the start to a multiple of k, and the curve
    (Greenwood SE, log-log CI) recomputed from those counts; only the times where a rounded count
    changes are kept. The returned frame has the same columns; every count in it is a multiple of
    k, and every step of the curve is (multiple of k) / (multiple of k).

    References
    ----------
    OpenSAFELY kaplan-meier-function, ``round_km`` (ceiling rounding of cumulative counts).
    """
    k = int(min_cell_count)
    cols = ["time", "n_risk", "n_event", "n_censor", "survival", "std_err", "ci_low", "ci_high"]
    if table.empty or k <= 1:
        return table.reindex(columns=cols).copy()
    tab = table.sort_values("time")
    n0 = float(tab["n_risk"].iloc[0])
    cum_e = round_up(np.cumsum(tab["n_event"].to_numpy(dtype=float)), k)
    cum_c = round_up(np.cumsum(tab["n_censor"].to_numpy(dtype=float)), k)
    start = float(round_up(np.array([n0]), k)[0])
    prev_e = np.concatenate([[0.0], cum_e[:-1]])
    prev_c = np.concatenate([[0.0], cum_c[:-1]])
    d = cum_e - prev_e
    c = cum_c - prev_c
    n_risk = start - prev_e - prev_c
    keep = ((d > 0) | (c > 0)) & (n_risk > 0)
    d, c, n_risk, time = d[keep], c[keep], n_risk[keep], tab["time"].to_numpy(dtype=float)[keep]
    d = np.minimum(d, n_risk)
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf))
        se = np.sqrt(green)  # SE of log S
        z = float(_z(conf_level))
        log_s = np.log(surv)
        inner = z * se / log_s
        lo = np.where(surv > 0, surv ** np.exp(-inner), np.nan)
        hi = np.where(surv > 0, surv ** np.exp(inner), np.nan)
        std_err = np.where(np.isfinite(se), se * surv, np.nan)
    lo = np.where((surv >= 1) | ~np.isfinite(lo), np.where(surv >= 1, 1.0, np.nan), lo)
    hi = np.where((surv >= 1) | ~np.isfinite(hi), np.where(surv >= 1, 1.0, np.nan), hi)
    return pd.DataFrame({"time": time, "n_risk": n_risk.astype(np.int64), "n_event": d.astype(np.int64),
                         "n_censor": c.astype(np.int64), "survival": surv, "std_err": std_err,
                         "ci_low": np.minimum(lo, hi), "ci_high": np.maximum(lo, hi)})


def protect_histogram(values: np.ndarray, bins: np.ndarray, min_cell_count: int = DEFAULT_MIN_CELL_COUNT, *,
                      weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(counts, mass) per bin of *values*: the counts rounded up to multiples of k (rule 4; 0
    stays 0), and the mass a density is drawn from: the rounded count, times the mean of
    *weights* in the bin when given. Non-finite values and weights of 0 are left out."""
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    keep = np.isfinite(x) & (w > 0)
    x, w = x[keep], w[keep]
    counts, _ = np.histogram(x, bins=bins)
    rounded = round_up(counts, min_cell_count) if min_cell_count > 1 else counts.astype(float)
    if weights is None:
        return rounded, rounded.copy()
    sums, _ = np.histogram(x, bins=bins, weights=w)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_w = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return rounded, rounded * mean_w


def km_at_risk(protected: pd.DataFrame, times: Iterable[float], n0: int, min_cell_count: int) -> list[int]:
    """Numbers at risk at *times* read from a :func:`protect_km` table (multiples of k).

    At a time before the first kept row, the rounded starting number; after the last, the
    rounded number left (0 when every count is accounted for).
    """
    k = int(min_cell_count)
    start = int(round_up(np.array([n0]), k)[0]) if k > 1 else int(n0)
    t = protected["time"].to_numpy(dtype=float)
    left = start - np.concatenate([[0], np.cumsum(protected["n_event"].to_numpy() + protected["n_censor"].to_numpy())])
    out = []
    for q in times:
        idx = int(np.searchsorted(t, float(q), side="left"))  # rows before q have left the risk set
        out.append(max(int(left[idx]), 0))
    return out


def _z(conf_level: float) -> float:

    return float(norm_ppf(0.5 + conf_level / 2))


def check_min_cell_count(min_cell_count: int, *, allow_small_cells: bool, where: str) -> str | None:
    """Validate a min_cell_count; return the warning to print when it is below the floor.

    Raises :class:`InputError` (naming *where*) when it is below 1, or below
    :data:`SMALL_CELL_FLOOR` without *allow_small_cells*.
    """
    if min_cell_count < 1:
        raise InputError(f"{where}: min_cell_count must be >= 1. Got {min_cell_count} instead.")
    if min_cell_count >= SMALL_CELL_FLOOR:
        return None
    if not allow_small_cells:
        raise InputError(
            f"{where}: min_cell_count {min_cell_count} is below {SMALL_CELL_FLOOR}, so counts as small as "
            f"{min_cell_count} could leave the machine; pass --allow-small-cells to do this on purpose")
    if min_cell_count == 1:
        return "small-cell suppression is OFF (min_cell_count 1): every count is shown; do not share these outputs"
    return (f"small-cell suppression is weakened (min_cell_count {min_cell_count} < {SMALL_CELL_FLOOR}): counts from "
            f"{min_cell_count} up are shown; check before sharing")


def finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


_NUMERATORS = ("responders", "events", "x", "count_events")
_RATE_KEYS = ("rate", "risk", "proportion", "ci_low", "ci_high", "estimate", "se")


def withhold_small_rates(obj: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> Any:
    """A copy of a JSON-like *obj* in which every dict holding a numerator (``responders``,
    ``events``) and its ``n`` has its rate-like figures (rate, risk, proportion, CI, estimate, se)
    set to None when the numerator or n - numerator is small (rule 3): rate x n would give the
    count back. Apply before :func:`suppress_counts`."""
    if isinstance(obj, list):
        return [withhold_small_rates(v, min_cell_count) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: withhold_small_rates(v, min_cell_count) for k, v in obj.items()}
    num = next((k for k in _NUMERATORS if k in out and not isinstance(out[k], (dict, list))), None)
    if num is not None and finite(out.get("n")) and finite(out[num]) and not isinstance(out[num], bool):
        if not events_publishable(out["n"], out[num], min_cell_count):
            for k in _RATE_KEYS:
                if k in out and not isinstance(out[k], (dict, list)):
                    out[k] = None
            if not is_small(out[num], min_cell_count) and is_small(float(out["n"]) - float(out[num]), min_cell_count):
                out[num] = None  # the complement is the small cell: the numerator would give it back
    return out
