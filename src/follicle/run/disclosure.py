"""The small-cell rules of :mod:`follicle.privacy` applied to a comparison's results.

Which counts nest in which: each cohort's attrition steps; then, per arm, the comparison's steps
(``target``/``comparator``, ``overlap_*``) and the arm before adjustment; then, per adjustment (a
branch of its own), the people that adjustment analyses (matched, in strata holding both arms,
weighted: everybody), and the people of that adjustment at risk of each outcome (less those with
the outcome before). Each is protected as a chain (:func:`follicle.privacy.protect_chain`); a
cohort's own steps are protected on their own first, so two comparisons sharing a cohort withhold
the same steps. Table 1 and balance rows of binary covariates are shown only when their cells (in
the arm before adjustment and among the people the adjustment analyses) pass
:func:`follicle.privacy.proportion_publishable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from follicle.privacy import last_shown, proportion_publishable, protect_chain, suppress_count

ARMS = ("target", "comparator")


@dataclass
class ArmCounts:
    """Published values of one arm's chain: before adjustment, analysed per adjustment, and per
    adjustment and outcome the number at risk."""

    before: Any
    adjusted: dict[str, Any] = field(default_factory=dict)
    at_risk: dict[str, dict[str, Any]] = field(default_factory=dict)


def _is_arm_step(step: Any, arm: str) -> bool:
    return step == arm or str(step).endswith("_" + arm)


def _adjustment_of(rows: pd.DataFrame, i: int) -> str | None:
    if "adjustment" not in rows.columns:
        return None
    value = rows.at[i, "adjustment"]
    return value if isinstance(value, str) and value else None


def protect_attrition(attrition: pd.DataFrame, comparison: str, cohorts: dict[str, str], n_before: dict[str, Any],
                      n_adjusted: dict[str, dict[str, int]], outcome_n: dict[str, dict[str, dict[str, int]]], k: int,
                      *, linked: frozenset[str] | set[str] = frozenset(),
                      ) -> tuple[list[dict[str, Any]], dict[str, ArmCounts]]:
    """(attrition records with published counts, per-arm published counts).

    *cohorts* maps arm -> cohort name; *n_before* arm -> size before adjustment (None when the
    comparison stopped before); *n_adjusted* adjustment -> arm -> people analysed;
    *outcome_n* adjustment -> outcome -> arm -> number at risk. Adjustments in *linked* have arm
    counts tied to each other (matching: 1:k sets, so the matched comparators are k times the
    matched targets): when one arm's count is not shown, the other is withheld too, or it would
    give the hidden one back. When an analysed count is not shown, a number at risk under that
    adjustment is shown only if it is at least k below it (else, with nobody having had the
    outcome before, it would be the hidden count). Attrition rows of an adjustment (column ``adjustment``, step
    ``<prefix>_<arm>`` or ``<prefix>_<arm>_<name>``) hold its analysed counts and are published
    as those.
    """
    rows = attrition.reset_index(drop=True)
    shown: list[Any] = [None] * len(rows)
    arms: dict[str, ArmCounts] = {}
    sides: dict[str, list[Any]] = {}
    tops: dict[str, Any] = {}
    adj_rows = {i: _adjustment_of(rows, i) for i in range(len(rows))}
    for arm in ARMS:
        own = [i for i in range(len(rows)) if rows.at[i, "cohort"] == cohorts[arm]]
        values = protect_chain([int(rows.at[i, "persons"]) for i in own], k)
        for i, v in zip(own, values):
            shown[i] = v
        comp_rows = [i for i in range(len(rows)) if rows.at[i, "cohort"] == comparison and adj_rows[i] is None
                     and _is_arm_step(rows.at[i, "step"], arm)]
        chain = [int(rows.at[i, "persons"]) for i in comp_rows]
        if n_before[arm] is not None:
            chain.append(n_before[arm])
        out = protect_chain(chain, k, anchor=last_shown(values))
        for i, v in zip(comp_rows, out):
            shown[i] = v
        arms[arm] = ArmCounts(before=out[-1] if n_before[arm] is not None else None)
        top = last_shown(out)
        tops[arm] = top if top is not None else last_shown(values)
        sides[arm] = out
    # each adjustment: a branch of each arm's chain from the arm before adjustment
    for name, per_arm in n_adjusted.items():
        values = {arm: protect_chain([per_arm[arm]], k, anchor=tops[arm])[0] for arm in ARMS}
        if name in linked and not all(isinstance(v, int) for v in values.values()):
            values = {arm: None if isinstance(v, int) else v for arm, v in values.items()}
        for arm in ARMS:
            arms[arm].adjusted[name] = values[arm]
            hidden = not isinstance(values[arm], int)
            anchor = tops[arm] if hidden else values[arm]
            at_risk = {}
            for o, ns in outcome_n.get(name, {}).items():
                value = protect_chain([ns[arm]], k, anchor=anchor)[0]
                if hidden and isinstance(value, int) and per_arm[arm] - ns[arm] < k:
                    value = None  # it would give back the analysed count withheld above (or bound it within k)
                at_risk[o] = value
            arms[arm].at_risk[name] = at_risk
    for i in range(len(rows)):
        name = adj_rows[i]
        if name is None or rows.at[i, "cohort"] != comparison:
            continue
        arm = next((a for a in ARMS if str(rows.at[i, "step"]).split("_")[1:2] == [a]), None)
        if arm is not None and name in arms[arm].adjusted:
            shown[i] = arms[arm].adjusted[name]
        elif arm is not None:  # a step of an adjustment not given: on its own branch
            shown[i] = protect_chain([int(rows.at[i, "persons"])], k, anchor=tops[arm])[0]
    # rows of the comparison that belong to neither arm (in_both, time_at_risk): a plain small-count
    # rule, and withheld when an arm's count is withheld (time_at_risk = both arms before adjustment)
    any_withheld = any(v is None for out in sides.values() for v in out)
    for i in range(len(rows)):
        if rows.at[i, "cohort"] == comparison and shown[i] is None and adj_rows[i] is None and not any(
                _is_arm_step(rows.at[i, "step"], a) for a in ARMS):
            step = str(rows.at[i, "step"])
            value = int(rows.at[i, "persons"])
            shown[i] = suppress_count(value, k) if step == "in_both" or not any_withheld else None
    records = []
    for i in range(len(rows)):
        rec = {"cohort": rows.at[i, "cohort"], "step": rows.at[i, "step"], "description": rows.at[i, "description"],
               "count": shown[i]}
        if adj_rows[i] is not None:
            rec["adjustment"] = adj_rows[i]
        records.append(rec)
    return records, arms


def binary_cells(X: Any, t: np.ndarray, analysed: np.ndarray) -> pd.DataFrame:
    """Per column of *X* (dense frame/array or scipy sparse): is it 0/1, and the number of 1s per
    arm before adjustment and among the people an adjustment analyses (*analysed*: matched, in a
    stratum holding both arms, or weighted), unweighted: the cells a proportion or SMD is built on."""
    from scipy import sparse

    t = np.asarray(t).astype(int)
    analysed = np.asarray(analysed, dtype=bool)
    masks = {"target_before": t == 1, "comparator_before": t == 0,
             "target_after": (t == 1) & analysed, "comparator_after": (t == 0) & analysed}
    if sparse.issparse(X):
        M = sparse.csc_matrix(X)
        data_binary = np.array([np.isin(M.data[M.indptr[j]:M.indptr[j + 1]], (0.0, 1.0)).all()
                                for j in range(M.shape[1])], dtype=bool)
        out = {name: np.asarray(M[mask].sum(axis=0)).ravel() for name, mask in masks.items()}
    else:
        A = np.asarray(X, dtype=float)
        data_binary = np.all(np.isin(A, (0.0, 1.0)), axis=0) if A.size else np.zeros(A.shape[1], dtype=bool)
        out = {name: A[mask].sum(axis=0) for name, mask in masks.items()}
    frame = pd.DataFrame(out)
    frame.insert(0, "binary", data_binary)
    return frame


def _row_ok(cells: pd.Series, arm: str, when: str, n: dict[str, dict[str, Any]], k: int) -> bool:
    x = cells[f"{arm}_{when}"]
    if when == "before":
        return proportion_publishable(x, n["before"][arm], k)
    return proportion_publishable(x, n["after"][arm], k, superset=(cells[f"{arm}_before"], n["before"][arm]))


def protect_rows(frame: pd.DataFrame, cells: pd.DataFrame, n: dict[str, dict[str, Any]], k: int, *,
                 value_columns: dict[str, tuple[str, str]], smd_columns: dict[str, str]) -> tuple[list[dict], int]:
    """Rows of Table 1 or the balance table with the figures of small cells withheld (None).

    *value_columns* maps a column to (arm, when) (e.g. ``target_before``); *smd_columns* maps an
    SMD column to the ``when`` it compares (withheld when either arm's proportion is). *n* gives
    the arm sizes: ``n["before"|"after"]["target"|"comparator"]`` (true counts; proportions use
    them). Returns the records and how many rows lost a figure.
    """
    records, hidden = [], 0
    for (_, row), (_, c) in zip(frame.iterrows(), cells.iterrows()):
        rec = row.to_dict()
        if bool(c["binary"]):
            ok = {(arm, when): _row_ok(c, arm, when, n, k) for arm in ("target", "comparator")
                  for when in ("before", "after")}
            for col, key in value_columns.items():
                if col in rec and not ok[key]:
                    rec[col] = None
            for col, when in smd_columns.items():
                if col in rec and not (ok[("target", when)] and ok[("comparator", when)]):
                    rec[col] = None
            hidden += not all(ok.values())
        records.append(rec)
    return records, hidden
