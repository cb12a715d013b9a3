"""Aggregate curve data of a run, for interactive plots and the report: Kaplan-Meier steps and
numbers at risk, and the preference-score distribution, small cells protected, per adjustment.

* Kaplan-Meier (crude and matching adjustments; weighted and stratified designs have no single
  unweighted curve): only estimates that are shown (a withheld estimate gets no curve), each arm's
  event steps (survival and CI; not the number at risk of each step, which would date each
  censoring) while at least ``min_cell_count`` people are at risk, and numbers at risk at the
  report's ticks, all from the curve rebuilt from rounded counts that the report draws
  (:func:`follicle.privacy.protect_km`): an exact step would give back 1 event over the people at
  risk, so every step and number at risk is built from multiples of ``min_cell_count``.
* Preference score: counts per arm in 20 bins of width 0.05, each rounded up to a multiple of
  ``min_cell_count`` (0 stays 0; :func:`follicle.privacy.protect_histogram`), so no bin, nor a
  difference of bins, gives back a small count; densities are computed from the rounded counts.
  Once before adjustment (``adjustment`` null) and once per propensity-score adjustment for the
  people it analyses: matched people, people in strata holding both arms (unweighted: stratum
  weights are built from per-stratum counts), and for IPTW everybody, weighted (the rounded count
  times the bin's mean weight).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from follicle.privacy import km_at_risk, protect_histogram, protect_km, suppress_count
from follicle.run.pipeline import ComparisonRun

BINS = np.linspace(0.0, 1.0, 21)
KM_COLUMNS = ["comparison", "adjustment", "outcome", "arm", "time", "survival", "ci_low", "ci_high"]
AT_RISK_COLUMNS = ["comparison", "adjustment", "outcome", "arm", "time", "at_risk"]
PREFERENCE_COLUMNS = ["comparison", "adjustment", "arm", "bin_low", "bin_high", "count", "density"]


def protected_curves(curves: dict[str, pd.DataFrame], ticks: list[float], min_cell: int,
                     ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Curves rebuilt from rounded counts, and numbers at risk at *ticks* read from them (text)."""
    out, rows = {}, {}
    for label, curve in curves.items():
        table = curve.rename(columns={"at_risk": "n_risk"})
        safe = protect_km(table, min_cell)
        out[label] = safe[["time", "survival", "ci_low", "ci_high", "n_risk"]].rename(columns={"n_risk": "at_risk"})
        n0 = int(table["n_risk"].iloc[0]) if len(table) else 0
        rows[label] = [str(v) for v in km_at_risk(safe, ticks, n0, min_cell)]
    return out, pd.DataFrame.from_dict(rows, orient="index", columns=ticks)


def shown_estimates(results: dict[str, Any], comparison: str, adjustment: str) -> set[str]:
    """Outcomes whose hazard ratio under *adjustment* is published (the others get no curve)."""
    return {o["outcome"] for comp in results["comparisons"] if comp["id"] == comparison for o in comp["outcomes"]
            for e in (o.get("estimates") or [dict(o, name=comp.get("primary_adjustment"))])
            if e.get("name") == adjustment and e.get("hr") is not None}


def published_curves(runs: list[ComparisonRun], results: dict[str, Any], min_cell: int,
                     ) -> list[tuple[str, str, str, dict[str, pd.DataFrame], pd.DataFrame]]:
    """(comparison, adjustment, outcome, protected curves, numbers at risk) of every curve that may
    be published: estimates shown, unweighted designs; negative controls under the primary
    adjustment only."""
    out = []
    for run in runs:
        for name in run.adjusted:
            shown = shown_estimates(results, run.name, name)
            for o in run.estimates[name]:
                if o.outcome not in shown or o.at_risk is None or not o.curves:
                    continue
                if o.negative_control and name != run.primary:
                    continue
                curves, at_risk = protected_curves(o.curves, [float(c) for c in o.at_risk.columns], min_cell)
                out.append((run.name, name, o.outcome, curves, at_risk))
    return out


def km_tables(published: list[tuple[str, str, str, dict[str, pd.DataFrame], pd.DataFrame]], min_cell: int,
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``km`` (comparison, adjustment, outcome, arm, time, survival, ci_low, ci_high) and
    ``km_at_risk`` (comparison, adjustment, outcome, arm, time, at_risk as text) of the
    :func:`published_curves`."""
    steps, risk = [], []
    for comparison, name, outcome, curves, at_risk in published:
        for arm, curve in curves.items():
            kept = curve[curve["at_risk"] >= min_cell]
            kept = kept[kept["survival"].diff().fillna(-1.0) != 0]  # event steps only
            for r in kept.itertuples(index=False):
                steps.append({"comparison": comparison, "adjustment": name, "outcome": outcome, "arm": arm,
                              "time": float(r.time), "survival": float(r.survival), "ci_low": float(r.ci_low),
                              "ci_high": float(r.ci_high)})
        for arm, values in at_risk.iterrows():
            for t, v in zip(at_risk.columns, values):
                risk.append({"comparison": comparison, "adjustment": name, "outcome": outcome, "arm": str(arm),
                             "time": float(t), "at_risk": str(suppress_count(int(v), min_cell))})
    return pd.DataFrame(steps, columns=KM_COLUMNS), pd.DataFrame(risk, columns=AT_RISK_COLUMNS)


def preference_bins(preference: np.ndarray, treatment: np.ndarray, labels: tuple[str, str], min_cell: int,
                    weights: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Protected preference-score histogram rows (arm, bin_low, bin_high, count, density) of one
    population: everybody (*weights* None), or the people with weight > 0, weighted when
    *weights* are given (see the module docstring for which adjustment passes what)."""
    rows = []
    width = float(BINS[1] - BINS[0])
    for value, arm in ((1, labels[0]), (0, labels[1])):
        keep = np.asarray(treatment) == value
        w = None if weights is None else np.asarray(weights, dtype=float)[keep]
        counts, mass = protect_histogram(np.asarray(preference)[keep], BINS, min_cell, weights=w)
        total = float(mass.sum())
        for lo, hi, c, m in zip(BINS[:-1], BINS[1:], counts, mass):
            rows.append({"arm": arm, "bin_low": float(lo), "bin_high": float(hi), "count": int(c),
                         "density": float(m / (total * width)) if total else 0.0})
    return rows


def adjusted_preference(run: ComparisonRun, name: str, min_cell: int) -> list[dict[str, Any]] | None:
    """The protected preference histogram of the people adjustment *name* analyses (None for crude,
    an adjustment that left an arm empty, or a comparison without propensity scores)."""
    adj = run.adjusted[name]
    if run.propensity is None or adj.kind == "crude" or not (adj.n_target and adj.n_comparator):
        return None
    analysed = (adj.weights > 0).astype(float)
    weights = adj.weights if adj.kind == "iptw" else analysed
    return preference_bins(run.propensity.preference, run.treatment, (run.target, run.comparator), min_cell, weights)


def preference_histograms(runs: list[ComparisonRun], min_cell: int) -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    """Protected preference-score histogram rows by (comparison, adjustment; None before
    adjustment), for comparisons with propensity scores (see :func:`adjusted_preference`)."""
    out: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for run in runs:
        if run.propensity is None:  # not estimable, or crude only: no propensity score
            continue
        out[(run.name, None)] = preference_bins(run.propensity.preference, run.treatment,
                                                (run.target, run.comparator), min_cell)
        for name in run.adjusted:
            bins = adjusted_preference(run, name, min_cell)
            if bins is not None:
                out[(run.name, name)] = bins
    return out


def preference_table(histograms: dict[tuple[str, str | None], list[dict[str, Any]]]) -> pd.DataFrame:
    """Preference-score histogram per comparison, arm, and adjustment (null: before adjustment),
    counts rounded up to multiples of the minimum cell count (from :func:`preference_histograms`)."""
    rows = [{"comparison": comparison, "adjustment": adjustment, **r}
            for (comparison, adjustment), bins in histograms.items() for r in bins]
    return pd.DataFrame(rows, columns=PREFERENCE_COLUMNS)


@dataclass(frozen=True)
class RunCurves:
    """The protected curves of a run, computed once for both the tables and the report's figures."""

    km: list[tuple[str, str, str, dict[str, pd.DataFrame], pd.DataFrame]]
    preference: dict[tuple[str, str | None], list[dict[str, Any]]]


def run_curves(runs: list[ComparisonRun], results: dict[str, Any], min_cell: int) -> RunCurves:
    """Kaplan-Meier curves that may be published and preference histograms of every comparison."""
    return RunCurves(published_curves(runs, results, min_cell), preference_histograms(runs, min_cell))


def curve_tables(curves: RunCurves, min_cell: int) -> dict[str, pd.DataFrame]:
    """The tables this module makes, keyed by their file names under ``tables/``."""
    km, at_risk = km_tables(curves.km, min_cell)
    return {"km": km, "km_at_risk": at_risk, "preference": preference_table(curves.preference)}
