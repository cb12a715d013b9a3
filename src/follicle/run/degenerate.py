"""Empty and degenerate data: which cohort, comparison or outcome cannot be estimated, and why.

A study on real data meets cohorts that empty at some inclusion step, comparisons whose
covariates do not vary or whose propensity model separates the arms, and outcomes with no
events. Each gets one message naming the cohort, comparison or outcome and the attrition step
where it emptied; the run keeps what it could compute (attrition, counts) and marks the rest with
a status:

========================  ========================================================================
status                    label (CLI, report)
========================  ========================================================================
``estimated``             the estimate
``suppressed``            ``suppressed (<10)``: computed, withheld because a count is small
``no events``             ``no events``: neither arm has an event in the time at risk
``not estimable``         ``not estimable (reason)``: e.g. no events in one arm, an empty arm
========================  ========================================================================

Counts in messages are suppressed as everywhere else (``<10``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from follicle.errors import FollicleError
from follicle.privacy import suppress_count
from follicle.study.counts import emptied_at, empty_cohort_message

ESTIMATED, SUPPRESSED, NO_EVENTS, NOT_ESTIMABLE = "estimated", "suppressed", "no events", "not estimable"
#: steps of a comparison's attrition that count the people left in an arm (the others count
#: cohort members, and people in both cohorts)
ARM_STEPS = ("overlap_target", "overlap_comparator", "time_at_risk")
#: statuses that count as estimated for the exit code (a suppressed estimate exists, it is withheld)
DONE = (ESTIMATED, SUPPRESSED)


class NotEstimable(FollicleError):
    """A comparison that cannot be estimated; ``step`` names where it emptied or failed and
    ``attrition`` holds the counts computed so far (kept in the results)."""

    exit_code = 3

    def __init__(self, message: str, *, comparison: str, short: str, step: str | None = None,
                 attrition: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.comparison = comparison
        self.short = short
        self.step = step
        self.attrition = attrition


def status_label(status: str, reason: str | None, min_cell_count: int) -> str:
    """The text shown for a status (see the module docstring); ``""`` for an estimate."""
    if status == SUPPRESSED:
        return f"suppressed (<{min_cell_count})"
    if status == NO_EVENTS:
        return "no events"
    if status == NOT_ESTIMABLE:
        return f"not estimable ({reason})" if reason else "not estimable"
    return ""


def empty_comparison(comparison: str, target: str, comparator: str, attrition: pd.DataFrame,
                     table: pd.DataFrame, min_cell_count: int) -> NotEstimable | None:
    """Why the comparison has nobody to compare, naming the cohort or comparison and the step
    where it emptied; None when both arms have people with time at risk."""
    for role, cohort in (("target", target), ("comparator", comparator)):
        hit = emptied_at(attrition, cohort)
        if hit is not None:
            text = empty_cohort_message(cohort, attrition, min_cell_count, role=f"{role} of {comparison!r}")
            return NotEstimable(text, comparison=comparison, short=f"cohort {cohort} empty after step {hit[0]}",  # type: ignore[arg-type]
                                step=f"{cohort}: {hit[0]}", attrition=attrition)
    rows = attrition[(attrition["cohort"] == comparison) & attrition["step"].isin(ARM_STEPS)]
    for r in rows.sort_values("step_index").itertuples():
        if int(r.persons) == 0:
            return NotEstimable(f"comparison {comparison!r} is empty after step {r.step!r} ({r.description})",
                                comparison=comparison, short=f"comparison empty after step {r.step}",
                                step=str(r.step), attrition=attrition)
    arms = table["treatment"].value_counts() if len(table) else pd.Series(dtype=int)
    for role, value, cohort in (("target", 1, target), ("comparator", 0, comparator)):
        if int(arms.get(value, 0)) == 0:
            return NotEstimable(f"comparison {comparison!r}: no {role} ({cohort}) has time at risk "
                                "(step 'time_at_risk')", comparison=comparison, short=f"no {role} with time at risk",
                                step="time_at_risk", attrition=attrition)
    return None


def constant_covariates(comparison: str, dense: pd.DataFrame, n_sparse: int, attrition: pd.DataFrame) -> NotEstimable | None:
    """A comparison none of whose propensity covariates varies: the model cannot be fitted."""
    if n_sparse or (len(dense.columns) and (dense.std(ddof=0) > 0).any()):
        return None
    listed = ", ".join(dense.columns) if len(dense.columns) else "none in the spec"
    return NotEstimable(f"comparison {comparison!r}: no propensity covariate varies among its people after step "
                        f"'time_at_risk' (covariates: {listed}), so the propensity model cannot be fitted",
                        comparison=comparison, short="no covariate varies", step="propensity model",
                        attrition=attrition)


def outcome_status(numbers: dict[str, Any], withheld: list[str]) -> tuple[str, str | None]:
    """Status and reason of one outcome from its (unsuppressed) numbers and withheld fields."""
    et, ec = numbers.get("events_target"), numbers.get("events_comparator")
    nt, nc = numbers.get("n_target"), numbers.get("n_comparator")
    if not nt or not nc:
        arm = "target" if not nt else "comparator"
        return NOT_ESTIMABLE, f"nobody in the {arm} arm at risk: all had the outcome before the time at risk"
    if not et and not ec:
        return NO_EVENTS, None
    if numbers.get("hr") is None:
        if not et or not ec:
            return NOT_ESTIMABLE, f"no events in the {'target' if not et else 'comparator'} arm"
        return NOT_ESTIMABLE, "the outcome model did not give a hazard ratio"
    if "hr" in withheld:
        return SUPPRESSED, None
    return ESTIMATED, None


def where_events_emptied(table: pd.DataFrame, outcome: str, set_ids: Any, min_cell_count: int) -> str:
    """For an outcome with no events among the matched people at risk: the step where its events
    ran out (the time at risk, the removal of people with the outcome before it, or matching),
    with the count before that step (suppressed)."""
    event = table[f"{outcome}_event"].fillna(0).astype(bool).to_numpy()
    prior = table[f"{outcome}_prior"].fillna(0).astype(bool).to_numpy()
    if not event.any():
        return "none in the time at risk"
    kept = event & ~prior
    if not kept.any():
        n = suppress_count(int(event.sum()), min_cell_count)
        return f"{n} in the time at risk, none left after removing people with the outcome before it"
    n = suppress_count(int(kept.sum()), min_cell_count)
    return f"{n} before matching, none among the matched"
