"""Per-outcome estimates in a matched cohort: KM, log-rank, Cox HR, PH test, risks, rates, E-value.

Pure functions over the analysis-table columns of one outcome (no I/O). Each returns plain,
unsuppressed numbers; :mod:`follicle.run.results` applies small-cell suppression before anything
leaves the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from follicle.causal import evalue
from follicle.run.adjust import AdjustedCohort
from follicle.study.settings import OutcomeModelSettings
from follicle.survival import (
    CoxPH,
    CoxResult,
    compare_survival,
    cox_zph,
    fit_outcome_model,
    followup_by_group,
    incidence_rate,
    numbers_at_risk,
    risk_comparison,
)
from follicle.survival.profile import Profile, cox_profile

DAYS_PER_YEAR = 365.25
#: designs whose people are analysed unweighted and ungrouped in the descriptive statistics
UNWEIGHTED = ("crude", "matching")


@dataclass
class OutcomeEstimate:
    """Everything reported for one comparison x outcome (unsuppressed; see results.py)."""

    outcome: str
    negative_control: bool
    numbers: dict[str, Any]
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    at_risk: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)  # run.diagnostics.Diagnostic, set by the pipeline
    not_estimable: str | None = None  # why the adjustment could not be made (then ``numbers`` is empty)
    profile: dict[str, list[float]] | None = None  # profile log-likelihood of the log HR (survival.profile)


def survival_days(days: np.ndarray, tar_start_day: np.ndarray) -> np.ndarray:
    """Days at risk counted as CohortMethod counts them: from the start of the time at risk to the
    event (or to the end of the time at risk), both days included: ``days - tar_start_day + 1``.

    *days* and *tar_start_day* are days after index (the analysis table's ``<o>_days`` and
    ``tar_start_day``); an event on the first day at risk has survival time 1. See
    docs/time-at-risk.md.
    """
    return np.asarray(days, dtype=float) - np.asarray(tar_start_day, dtype=float) + 1.0


def outcome_frame(table: pd.DataFrame, outcome: str, adjusted: AdjustedCohort) -> pd.DataFrame:
    """People analysed under *adjusted* and at risk of *outcome* (those with it before the time at
    risk are dropped), with their survival time (:func:`survival_days`), ``group`` (matched set or
    stratum) and ``weight``."""
    frame = pd.DataFrame({
        "treatment": table["treatment"].to_numpy(),
        "time": survival_days(table[f"{outcome}_days"].to_numpy(), table["tar_start_day"].to_numpy()),
        "event": table[f"{outcome}_event"].to_numpy(dtype=bool),
        "prior": table[f"{outcome}_prior"].to_numpy(dtype=bool),
        "group": adjusted.groups if adjusted.groups is not None else np.zeros(len(table), np.int64),
        "weight": adjusted.weights,
    })
    frame = frame[(frame["weight"] > 0) & ~frame["prior"]]
    return frame.reset_index(drop=True)


def estimate_outcome(
    frame: pd.DataFrame,
    outcome: str,
    *,
    negative_control: bool,
    settings: OutcomeModelSettings,
    adjustment: Any,
    labels: tuple[str, str],
    risk_window: float | None,
    tick_days: float = 365.25,
) -> OutcomeEstimate:
    """All statistics of one outcome under one adjustment (*frame* from :func:`outcome_frame`).

    The hazard ratio comes from the adjustment's outcome model (see :func:`hazard_ratio`). Risks,
    the log-rank test, the PH test and Kaplan-Meier curves describe the people as analysed, so
    they are computed for the unweighted designs (crude, matching) only.
    """
    t = frame["treatment"].to_numpy()
    time, event = frame["time"].to_numpy(), frame["event"].to_numpy()
    target, comparator = t == 1, t == 0
    numbers: dict[str, Any] = {
        "n_target": int(target.sum()), "n_comparator": int(comparator.sum()),
        "events_target": int(event[target].sum()), "events_comparator": int(event[comparator].sum()),
    }
    warnings: list[str] = []
    fu = followup_by_group(time, event, t)
    for arm, value in (("target", 1), ("comparator", 0)):
        py = float(time[t == value].sum()) / DAYS_PER_YEAR
        numbers[f"person_years_{arm}"] = py
        numbers[f"mean_followup_days_{arm}"] = float(fu.loc[value, "mean"]) if value in fu.index else None
        numbers[f"median_followup_days_{arm}"] = float(fu.loc[value, "median"]) if value in fu.index else None
        if py > 0:
            ir = incidence_rate(numbers[f"events_{arm}"], py, per=1000)
            numbers |= {f"ir_per_1000py_{arm}": ir.rate, f"ir_ci_low_{arm}": ir.ci_low, f"ir_ci_high_{arm}": ir.ci_high}

    enough = numbers["events_target"] > 0 and numbers["events_comparator"] > 0 and target.any() and comparator.any()
    if not enough:
        warnings.append("no events in at least one arm: HR and risk ratios not estimated")
        return OutcomeEstimate(outcome, negative_control, numbers, warnings=warnings)

    cox = hazard_ratio(frame, settings, adjustment)
    row = cox.row()
    profile = hazard_ratio_profile(frame, settings, adjustment, row["coef"], float(np.sqrt(cox.naive_var[0, 0])))
    numbers |= {"log_hr": row["coef"], "se_log_hr": row["se"], "hr": row["hr"], "hr_ci_low": row["ci_low"],
                "hr_ci_high": row["ci_high"], "p": row["p"]}
    warnings += list(cox.warnings)
    curves: dict[str, pd.DataFrame] = {}
    at_risk = None
    if adjustment.kind in UNWEIGHTED:
        curves, at_risk = _descriptive(frame, numbers, warnings, settings, labels, risk_window, tick_days)

    rare = max(numbers["events_target"] / max(numbers["n_target"], 1),
               numbers["events_comparator"] / max(numbers["n_comparator"], 1)) < 0.15
    if cox.infinite:  # monotone likelihood: the HR is 0 or infinite, and has no E-value
        numbers["evalue"] = numbers["evalue_ci"] = float("nan")
    else:
        ev = evalue(row["hr"], row["ci_low"], row["ci_high"], measure="HR", rare=rare)
        numbers["evalue"] = ev.evalue_estimate
        numbers["evalue_ci"] = ev.evalue_ci

    return OutcomeEstimate(outcome, negative_control, numbers, curves=curves, at_risk=at_risk, warnings=warnings,
                           profile=profile.to_dict())


def hazard_ratio(frame: pd.DataFrame, settings: OutcomeModelSettings, adjustment: Any) -> CoxResult:
    """The Cox model of treatment as the adjustment prescribes.

    crude: everyone, model-based SE; matching: robust SE clustered on the matched set (or a
    baseline hazard per set when ``stratify_by_pair``); stratification: a baseline hazard per
    stratum, model-based SE; IPTW: weighted, robust (sandwich) SE.
    """
    t = frame["treatment"].to_numpy()
    time, event = frame["time"].to_numpy(), frame["event"].to_numpy()
    group = frame["group"].to_numpy()
    kind = adjustment.kind
    if kind == "matching":
        by_pair = settings.stratify_by_pair if adjustment.stratify_by_pair is None else adjustment.stratify_by_pair
        return fit_outcome_model(time, event, t, ties=settings.ties, robust_se=settings.robust_se,
                                 stratify_by_pair=by_pair, pair_id=group)
    if kind == "stratification":
        return fit_outcome_model(time, event, t, ties=settings.ties, robust_se=False, stratify_by_pair=True, pair_id=group)
    if kind == "iptw":
        return fit_outcome_model(time, event, t, ties=settings.ties, robust_se=True, weights=frame["weight"].to_numpy())
    return fit_outcome_model(time, event, t, ties=settings.ties, robust_se=False)


def _model_design(frame: pd.DataFrame, settings: OutcomeModelSettings, adjustment: Any,
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(strata, case weights) of the outcome model :func:`hazard_ratio` fits for *adjustment*."""
    group = frame["group"].to_numpy()
    if adjustment.kind == "matching":
        by_pair = settings.stratify_by_pair if adjustment.stratify_by_pair is None else adjustment.stratify_by_pair
        return (group if by_pair else None), None
    if adjustment.kind == "stratification":
        return group, None
    if adjustment.kind == "iptw":
        return None, frame["weight"].to_numpy()
    return None, None


def hazard_ratio_profile(frame: pd.DataFrame, settings: OutcomeModelSettings, adjustment: Any, center: float,
                         se: float) -> Profile:
    """Profile log-likelihood of the log HR under the model of :func:`hazard_ratio` (same strata and
    weights; for IPTW the weighted pseudo-likelihood), what a network site shares for pooling."""
    strata, weights = _model_design(frame, settings, adjustment)
    return cox_profile(frame["time"].to_numpy(), frame["event"].to_numpy(), frame["treatment"].to_numpy(),
                       center=center, se=se, strata=strata, weights=weights, ties=settings.ties)


def _descriptive(frame: pd.DataFrame, numbers: dict[str, Any], warnings: list[str], settings: OutcomeModelSettings,
                 labels: tuple[str, str], risk_window: float | None,
                 tick_days: float) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Risks, log-rank, PH test and KM curves of an unweighted analysis (numbers updated in place)."""
    t = frame["treatment"].to_numpy()
    time, event = frame["time"].to_numpy(), frame["event"].to_numpy()
    risks = risk_comparison(time, event, t, window=risk_window, estimator="crude")
    numbers |= {
        "risk_target": risks.treated.risk, "risk_comparator": risks.comparator.risk,
        "rd": risks.rd, "rd_ci_low": risks.rd_ci_low, "rd_ci_high": risks.rd_ci_high,
        "rr": risks.rr, "rr_ci_low": risks.rr_ci_low, "rr_ci_high": risks.rr_ci_high,
        "or": risks.or_, "or_ci_low": risks.or_ci_low, "or_ci_high": risks.or_ci_high,
    }
    comp = compare_survival(time, event, t)
    numbers["logrank_chisq"] = comp.logrank.chisq
    numbers["logrank_p"] = comp.logrank.p
    try:
        model = CoxPH(ties=settings.ties).fit(t.reshape(-1, 1).astype(float), time, event)
        zph = cox_zph(model, t.reshape(-1, 1).astype(float), time, event)
        numbers["ph_test_chisq"] = float(zph.table["chisq"].iloc[-1])
        numbers["ph_test_p"] = float(zph.table["p"].iloc[-1])
    except Exception as exc:  # the PH test is a diagnostic: report why it is missing, keep the estimate
        warnings.append(f"PH test not computed: {exc}")
    years = float(time.max()) / DAYS_PER_YEAR
    step = tick_days * max(1, int(np.ceil(years / 8)))  # at most about 9 ticks under the curve
    ticks = np.arange(0, float(time.max()) + 1, step)
    curves = {}
    for value, label in ((1, labels[0]), (0, labels[1])):
        table = comp.curves[value].table
        curves[label] = table[["time", "survival", "ci_low", "ci_high", "n_risk", "n_event", "n_censor"]].rename(
            columns={"n_risk": "at_risk"})  # the counts let the report draw a rounded curve (privacy.protect_km)
    at_risk = numbers_at_risk({labels[0]: comp.curves[1], labels[1]: comp.curves[0]}, ticks)
    return curves, at_risk
