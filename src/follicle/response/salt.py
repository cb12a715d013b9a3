"""SALT score, AA-IGA category and eyebrow/eyelash ClinRO checks.

The Severity of Alopecia Tool weighs the percentage of terminal scalp hair lost in four regions
by the share of scalp each covers; AA-IGA bands the total into five categories.

References
----------
Olsen EA et al. Alopecia areata investigational assessment guidelines - Part II. J Am Acad
Dermatol 2004;51:440-447 (SALT; weights top 0.40, back 0.24, left 0.18, right 0.18).
Wyrwich KW et al. The Alopecia Areata Investigator Global Assessment scale. Br J Dermatol
2020;183:702-709 (AA-IGA bands 0 / 1-20 / 21-49 / 50-94 / 95-100; ClinRO 0-3 scales).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Region weights (share of the scalp), clinical.md section 2.1 (Olsen 2004).
SALT_WEIGHTS: dict[str, float] = {"top": 0.40, "back": 0.24, "left": 0.18, "right": 0.18}

#: AA-IGA categories: (code, label, lowest SALT, highest SALT), clinical.md section 2.3.
AA_IGA_BANDS: tuple[tuple[int, str, float, float], ...] = (
    (0, "none", 0.0, 0.0),
    (1, "limited", 1.0, 20.0),
    (2, "moderate", 21.0, 49.0),
    (3, "severe", 50.0, 94.0),
    (4, "very severe", 95.0, 100.0),
)

CLINRO_LEVELS = (0, 1, 2, 3)


@dataclass(frozen=True)
class SaltResult:
    """A SALT total with its regional inputs (kept so the total can be audited)."""

    top: float
    back: float
    left: float
    right: float
    salt: float
    aa_iga: int
    aa_iga_label: str


def _check_percent(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 100)
    if np.any(bad):
        got = arr[bad].ravel()[0] if arr.ndim else float(arr)
        raise ValueError(f"SALT region {name!r} must be a percentage in [0, 100]; got {got!r}")
    return arr


def salt_score(top: Any, back: Any, left: Any, right: Any) -> Any:
    """SALT total (0-100) from the four regional percentages of scalp hair loss.

    SALT = 0.40 top + 0.24 back + 0.18 left + 0.18 right. Accepts scalars or equal-length arrays;
    every input must lie in [0, 100]. The weighted sum is clipped to [0, 100] only to remove
    floating-point overshoot (at most 1e-12).

    Parameters
    ----------
    top, back, left, right : float or array-like
        Percentage of terminal scalp hair lost in each region.

    Returns
    -------
    float or numpy.ndarray
        The SALT total (an array for array input).

    References
    ----------
    Olsen EA et al. Alopecia areata investigational assessment guidelines - Part II. J Am Acad
    Dermatol 2004;51:440-447.

    Examples
    --------
    >>> round(salt_score(50, 20, 10, 0), 2)
    26.6
    """
    regions = {"top": top, "back": back, "left": left, "right": right}
    arrays = {k: _check_percent(k, v) for k, v in regions.items()}
    total = sum(SALT_WEIGHTS[k] * arrays[k] for k in SALT_WEIGHTS)
    total = np.clip(total, 0.0, 100.0)
    return float(total) if np.ndim(total) == 0 else total


def aa_iga(salt: Any) -> Any:
    """AA-IGA category 0-4 of a SALT total (or array of totals).

    The published bands use whole numbers (0, 1-20, 21-49, 50-94, 95-100); a fractional total is
    placed by the upper limits: 0 is category 0, (0, 20] is 1, (20, 49] is 2, (49, 94] is 3 and
    (94, 100] is 4, so a total of 20.4 counts as moderate, as a clinician rounding up would.

    Parameters
    ----------
    salt : float or array-like
        SALT total(s) in [0, 100].

    Returns
    -------
    int or numpy.ndarray
        0 none, 1 limited, 2 moderate, 3 severe, 4 very severe.

    References
    ----------
    Wyrwich KW et al. The Alopecia Areata Investigator Global Assessment scale. Br J Dermatol
    2020;183:702-709.

    Examples
    --------
    >>> aa_iga(26.6), aa_iga(20.4), aa_iga(100)
    (2, 2, 4)
    """
    arr = np.asarray(salt, dtype=float)
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 100)
    if np.any(bad):
        got = arr[bad].ravel()[0] if arr.ndim else float(arr)
        raise ValueError(f"SALT total must be in [0, 100]; got {got!r}")
    cat = np.select([arr == 0, arr <= 20, arr <= 49, arr <= 94], [0, 1, 2, 3], default=4)
    return int(cat) if cat.ndim == 0 else cat.astype(int)


def aa_iga_label(category: int) -> str:
    """The label of an AA-IGA category (0 none ... 4 very severe)."""
    for code, label, _, _ in AA_IGA_BANDS:
        if code == category:
            return label
    raise ValueError(f"AA-IGA category must be one of 0-4; got {category!r}")


def score(top: float, back: float, left: float, right: float) -> SaltResult:
    """SALT total, AA-IGA category and label of one assessment."""
    total = salt_score(top, back, left, right)
    cat = aa_iga(total)
    return SaltResult(float(top), float(back), float(left), float(right), total, cat, aa_iga_label(cat))


def check_clinro(value: Any, *, name: str = "ClinRO") -> Any:
    """Validate eyebrow or eyelash ClinRO scores: integers 0 (no loss) to 3 (complete loss)."""
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | ~np.isin(arr, CLINRO_LEVELS)
    if np.any(bad):
        got = arr[bad].ravel()[0] if arr.ndim else float(arr)
        raise ValueError(f"{name} must be an integer 0-3; got {got!r}")
    return int(arr) if arr.ndim == 0 else arr.astype(int)


def clinro_response(baseline: Any, current: Any, *, min_improvement: int = 1) -> Any:
    """ClinRO response: a score of 0 or 1 with at least *min_improvement* points of improvement.

    The definition differs between papers (1 point in the integrated analysis, 2 points among
    baseline >= 2 in BRAVE-AA; clinical.md section 2.5), so the improvement is a parameter.
    """
    b = check_clinro(baseline, name="baseline ClinRO")
    c = check_clinro(current, name="current ClinRO")
    res = (np.asarray(c) <= 1) & ((np.asarray(b) - np.asarray(c)) >= min_improvement)
    return bool(res) if np.ndim(res) == 0 else res
