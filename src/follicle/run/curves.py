"""Aggregate curve data of a run, for interactive plots: Kaplan-Meier steps and numbers at risk,
and the preference-score distribution, small cells protected.

* Kaplan-Meier: only outcomes whose estimates are shown (a withheld outcome gets no curve), each
  arm's event steps (survival and CI; not the number at risk of each step, which would date each
  censoring) while at least ``min_cell_count`` people are at risk, as the report's figures, and
  numbers at risk at the report's ticks with small counts written ``"<k"``.
* Preference score: counts per arm in 20 bins of width 0.05, each rounded up to a multiple of
  ``min_cell_count`` (0 stays 0), so no bin, nor a difference of bins, gives back a small count;
  densities are computed from the rounded counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from follicle.privacy import suppress_count
from follicle.run.pipeline import ComparisonRun

BINS = np.linspace(0.0, 1.0, 21)


def km_tables(runs: list[ComparisonRun], results: dict[str, Any], min_cell: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``km`` (comparison, outcome, arm, time, survival, ci_low, ci_high) and ``km_at_risk``
    (comparison, outcome, arm, time, at_risk as text)."""
    steps, risk = [], []
    for run in runs:
        shown = {o["outcome"] for comp in results["comparisons"] if comp["id"] == run.name
                 for o in comp["outcomes"] if o.get("hr") is not None}
        for o in run.outcomes:
            if o.outcome not in shown or o.at_risk is None or not o.curves:
                continue
            for arm, curve in o.curves.items():
                kept = curve[curve["at_risk"] >= min_cell]
                kept = kept[kept["survival"].diff().fillna(-1.0) != 0]  # event steps only
                for r in kept.itertuples(index=False):
                    steps.append({"comparison": run.name, "outcome": o.outcome, "arm": arm, "time": float(r.time),
                                  "survival": float(r.survival), "ci_low": float(r.ci_low), "ci_high": float(r.ci_high)})
            for arm, values in o.at_risk.iterrows():
                for t, v in zip(o.at_risk.columns, values):
                    risk.append({"comparison": run.name, "outcome": o.outcome, "arm": str(arm), "time": float(t),
                                 "at_risk": str(suppress_count(int(v), min_cell))})
    cols = ["comparison", "outcome", "arm", "time", "survival", "ci_low", "ci_high"]
    return pd.DataFrame(steps, columns=cols), pd.DataFrame(risk, columns=["comparison", "outcome", "arm", "time", "at_risk"])


def preference_table(runs: list[ComparisonRun], min_cell: int) -> pd.DataFrame:
    """Preference-score histogram per comparison and arm, counts rounded up to multiples of *min_cell*."""
    rows = []
    width = float(BINS[1] - BINS[0])
    for run in runs:
        if run.propensity is None:  # not estimable: no propensity score
            continue
        pref = run.propensity.preference
        for value, arm in ((1, run.target), (0, run.comparator)):
            x = pref[run.treatment == value]
            counts, _ = np.histogram(x[np.isfinite(x)], bins=BINS)
            rounded = np.ceil(counts / min_cell) * min_cell if min_cell > 1 else counts.astype(float)
            total = rounded.sum()
            for lo, hi, c in zip(BINS[:-1], BINS[1:], rounded):
                rows.append({"comparison": run.name, "arm": arm, "bin_low": float(lo), "bin_high": float(hi),
                             "count": int(c), "density": float(c / (total * width)) if total else 0.0})
    return pd.DataFrame(rows, columns=["comparison", "arm", "bin_low", "bin_high", "count", "density"])


def curve_tables(runs: list[ComparisonRun], results: dict[str, Any], min_cell: int) -> dict[str, pd.DataFrame]:
    """The tables this module makes, keyed by their file names under ``tables/``."""
    km, at_risk = km_tables(runs, results, min_cell)
    return {"km": km, "km_at_risk": at_risk, "preference": preference_table(runs, min_cell)}
