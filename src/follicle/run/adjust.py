"""One adjustment of a comparison: who is analysed, with which weights or groups, and the balance.

Pure functions over the propensity scores, the treatment and the covariates (no I/O). Each
:class:`AdjustedCohort` says, for every person of the comparison, the weight the person carries
in the balance check and in the outcome model (0: not analysed) and the group the outcome model
uses: the matched set (matching) or the stratum (stratification).

Estimands: 1:1 and 1:k matching and ATT weights target the treated (target) population;
ATE weights the whole comparison population; a Cox model stratified on PS strata estimates a
hazard ratio conditional on the stratum, pooled across strata (neither marginal estimand
exactly); crude estimates nothing causal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from follicle.causal import balance_table, effective_sample_size, ipw_weights, match, strata_table, stratify
from follicle.causal.stratification import stratum_weights
from follicle.run.disclosure import binary_cells
from follicle.run.table1 import table1

ESTIMANDS = {
    "crude": "none (unadjusted association)",
    "matching": "ATT (treated population, matched)",
    "stratification": "HR conditional on PS stratum, pooled over strata",
    "iptw:ate": "ATE (whole comparison population)",
    "iptw:att": "ATT (treated population)",
}


@dataclass
class AdjustedCohort:
    """One adjustment applied to one comparison (unsuppressed; see results.py).

    Attributes
    ----------
    weights : per person; the weight in the balance check and the outcome model, 0 = not analysed.
    groups : per person; matched set or stratum (-1: none), or None (crude, IPTW).
    outcome_weighted : whether the outcome model uses ``weights`` as case weights (IPTW).
    table1_cells, balance_cells : the unweighted 0/1 cells behind each Table 1 and balance row, per
        arm before adjustment and among the people analysed (see
        :func:`follicle.run.disclosure.binary_cells`), for small-cell protection.
    """

    name: str
    kind: str
    estimand: str
    weights: np.ndarray
    groups: np.ndarray | None
    outcome_weighted: bool
    n_target: int
    n_comparator: int
    balance: pd.DataFrame
    table1: pd.DataFrame
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    table1_cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    balance_cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def max_abs_smd(self) -> float:
        """Largest |SMD| after adjustment (NaN when there are no covariates)."""
        col = self.balance["smd_after"] if "smd_after" in self.balance else pd.Series(dtype=float)
        values = np.abs(col.to_numpy(dtype=float))
        values = values[~np.isnan(values)]
        return float(values.max()) if values.size else float("nan")


def adjust(setting: Any, t: np.ndarray, ps: np.ndarray | None, X: Any, names: list[str], dense: pd.DataFrame,
           *, threshold: float) -> AdjustedCohort:
    """Apply *setting* (an adjustment of :mod:`follicle.study.settings`) to one comparison.

    *t* is the treatment (0/1) per person, *ps* the propensity scores (None when no adjustment
    needs them), *X* the propensity covariates (dense or sparse, columns *names*) and *dense* the
    dense covariates shown in Table 1.
    """
    t = np.asarray(t).astype(int)
    groups: np.ndarray | None = None
    details: dict[str, Any] = {}
    warnings: list[str] = []
    kind = setting.kind
    if kind == "crude":
        weights = np.ones(t.shape[0])
        estimand = ESTIMANDS["crude"]
    elif ps is None:
        raise ValueError(f"adjustment {setting.name!r} ({kind}) needs propensity scores")
    elif kind == "matching":
        result = match(ps, t, **setting.step_args())
        weights = result.weights()
        groups = result.set_ids()
        details = {"caliper_width": float(result.caliper_width), "pooled_sd_logit": float(result.pooled_sd_logit),
                   "matched_sets": int(result.n_treated_matched), "ratio": int(setting.ratio),
                   "variable_ratio": bool(setting.variable_ratio), "order": setting.order}
        estimand = ESTIMANDS["matching"]
    elif kind == "stratification":
        groups = stratify(ps, t, **setting.step_args())
        tab = strata_table(groups, t)
        empty = tab[(tab["n_treated"] == 0) | (tab["n_untreated"] == 0)]
        if len(empty):
            warnings.append(f"{len(empty)} of {len(tab)} strata hold only one arm and add nothing to the estimate")
        # marginal mean weights (Hong 2010) for the balance check: each stratum's arms reweighted to its
        # size; a stratum holding one arm adds nothing to the stratified Cox model, so its people are
        # not analysed (weight 0), as the attrition says
        both = set(tab.loc[(tab["n_treated"] > 0) & (tab["n_untreated"] > 0), "stratum"])
        weights = np.where(np.isin(groups, list(both)), stratum_weights(groups, t, estimand="ate"), 0.0)
        details = {"n_strata": int(setting.n_strata), "strata_with_both_arms": int(len(tab) - len(empty))}
        estimand = ESTIMANDS["stratification"]
    elif kind == "iptw":
        weights = ipw_weights(ps, t, **setting.step_args())
        details = {"max_weight": float(weights.max()), "min_weight": float(weights.min()),
                   "ess_target": effective_sample_size(weights[t == 1]),
                   "ess_comparator": effective_sample_size(weights[t == 0])}
        estimand = ESTIMANDS[f"iptw:{setting.estimand}"]
    else:  # pragma: no cover - the spec admits no other kind
        raise ValueError(f"unknown adjustment kind {kind!r}")
    n_target = int(((weights > 0) & (t == 1)).sum())
    n_comparator = int(((weights > 0) & (t == 0)).sum())
    balance = _balance(X, t, weights, names, threshold, adjusted=kind != "crude", both=n_target > 0 and n_comparator > 0)
    dense_bal = balance.set_index("covariate").reindex(dense.columns).reset_index()
    dense_bal["covariate"] = dense.columns
    tab1 = table1(dense, t, weights, dense_bal) if len(dense.columns) else _empty_table1()
    analysed = weights > 0
    return AdjustedCohort(setting.name, kind, estimand, weights, groups, kind == "iptw", n_target, n_comparator,
                          balance, tab1, details, warnings,
                          table1_cells=binary_cells(dense.to_numpy(dtype=float), t, analysed),
                          balance_cells=_cells(X, t, analysed))


def _balance(X: Any, t: np.ndarray, weights: np.ndarray, names: list[str], threshold: float, *,
             adjusted: bool, both: bool) -> pd.DataFrame:
    """SMD before and after; crude is 'after' nothing, so its after equals its before."""
    if X is None or X.shape[1] == 0:
        return pd.DataFrame({"covariate": pd.Series(dtype=str), "smd_before": pd.Series(dtype=float),
                             "smd_after": pd.Series(dtype=float), "status": pd.Series(dtype=str)})
    if not adjusted:
        bal = balance_table(X, t, threshold=threshold, feature_names=names)
        bal["smd_after"] = bal["smd_before"]
        return bal
    if not both:  # nobody left in an arm: nothing to compare after adjustment
        bal = balance_table(X, t, threshold=threshold, feature_names=names)
        bal["smd_after"] = np.nan
        bal["status"] = "FAIL"
        return bal
    return balance_table(X, t, weights_after=weights, threshold=threshold, feature_names=names)


def _cells(X: Any, t: np.ndarray, analysed: np.ndarray) -> pd.DataFrame:
    if X is None or X.shape[1] == 0:
        return binary_cells(np.zeros((len(t), 0)), t, analysed)
    return binary_cells(X, t, analysed)


def _empty_table1() -> pd.DataFrame:
    cols = ["covariate", "target_before", "comparator_before", "smd_before", "target_after", "comparator_after",
            "smd_after", "status"]
    return pd.DataFrame({c: pd.Series(dtype=str if c in ("covariate", "status") else float) for c in cols})
