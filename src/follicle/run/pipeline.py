"""The comparative study as a row of cached steps.

cohorts -> analysis table -> propensity model -> matching -> balance -> per outcome (KM, log-rank,
Cox, risks, PH test, E-value) -> negative-control calibration. Each step's artefact is stored under
the hash of the spec parts that produced it and the content hashes of the CDM tables the study
reads (:mod:`follicle.run.cache`, :func:`follicle.cdm.fingerprint.table_hashes`), so changing one
outcome recomputes only that outcome, and a change to any row of a table read recomputes everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from follicle.causal import (
    balance_table,
    calibrate_ci,
    calibrate_p,
    equipoise,
    PropensityModel,
    fit_null,
    match,
    preference_score,
    ps_auc,
)
from follicle.errors import InputError
from follicle.run import diagnostics as dx
from follicle.run.degenerate import (
    ESTIMATED,
    NOT_ESTIMABLE,
    NotEstimable,
    constant_covariates,
    empty_comparison,
    where_events_emptied,
)
from follicle.run.cache import ArtifactStore
from follicle.run.disclosure import binary_cells
from follicle.run.estimate import OutcomeEstimate, estimate_outcome, outcome_frame
from follicle.run.table1 import table1
from follicle.study.hashing import part_hashes
from follicle.study.population import Population
from follicle.study.spec import StudySpec

Progress = Callable[[str], None]


@dataclass
class PropensityStep:
    """Propensity model, matched sets and balance of one comparison (unsuppressed)."""

    ps: np.ndarray
    preference: np.ndarray
    set_ids: np.ndarray
    auc: float
    equipoise: float
    n_covariates: int
    balance: pd.DataFrame
    table1: pd.DataFrame
    n_target_before: int
    n_comparator_before: int
    n_target: int
    n_comparator: int
    caliper_width: float
    warnings: list[str] = field(default_factory=list)
    #: 0/1 cells behind each Table 1 row and each balance row (see run/disclosure.binary_cells)
    table1_cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    balance_cells: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class ComparisonRun:
    """Everything computed for one comparison; one that could not be estimated has ``status``
    ``"not estimable"``, the ``reason``, the attrition computed so far and no propensity step."""

    name: str
    target: str
    comparator: str
    attrition: pd.DataFrame
    propensity: PropensityStep | None
    treatment: np.ndarray
    outcomes: list[OutcomeEstimate]
    diagnostics: list[dx.Diagnostic]
    null: dict[str, float] | None
    warnings: list[str] = field(default_factory=list)
    status: str = ESTIMATED
    reason: str | None = None
    short_reason: str | None = None
    outcome_notes: dict[str, str] = field(default_factory=dict)  # outcome without events -> where they ran out


def not_estimable_run(spec: StudySpec, exc: NotEstimable) -> ComparisonRun:
    """The record of a comparison that stopped with *exc*: its attrition so far and the reason."""
    comp = spec.comparisons[exc.comparison]
    attrition = exc.attrition if exc.attrition is not None else pd.DataFrame(
        columns=["cohort", "step_index", "step", "description", "persons"])
    return ComparisonRun(exc.comparison, comp.target, comp.comparator, attrition, None, np.array([], dtype=int), [], [],
                         None, warnings=[exc.render()], status=NOT_ESTIMABLE, reason=str(exc), short_reason=exc.short)


def dense_covariates(table: pd.DataFrame) -> pd.DataFrame:
    """The dense propensity covariates of an analysis table: every ``cov_`` column (demographics
    included, as ``cov_age`` and ``cov_female``, when the spec asks for them)."""
    cols = {c.removeprefix("cov_"): table[c].astype(float) for c in table.columns if c.startswith("cov_")}
    return pd.DataFrame(cols, index=table.index)


def design_matrix(population: Population) -> tuple[Any, list[str]]:
    """Dense covariates, plus the sparse ones (one column per covariate id) when the spec asks for them."""
    dense = dense_covariates(population.table)
    dense = dense.loc[:, dense.std(ddof=0) > 0]  # a constant column carries no information
    names = list(dense.columns)
    sp = population.sparse_covariates
    if sp is None or sp.empty:
        return dense.to_numpy(), names
    row = pd.Index(population.table["person_id"]).get_indexer(sp["person_id"])
    ids, col = np.unique(sp["covariate_id"].to_numpy(), return_inverse=True)
    keep = row >= 0
    mat = sparse.csr_matrix((sp["value"].to_numpy(dtype=float)[keep], (row[keep], col[keep])),
                            shape=(len(population.table), len(ids)))
    ref = population.covariate_ref.set_index("covariate_id")["covariate_name"] if len(population.covariate_ref) else {}
    names += [str(ref.get(i, i)) for i in ids]
    return sparse.hstack([sparse.csr_matrix(dense.to_numpy()), mat], format="csr"), names


def propensity_step(spec: StudySpec, population: Population) -> PropensityStep:
    """Fit the PS model, match, and measure balance, with the spec's settings.

    Raises :class:`NotEstimable` when no covariate varies or the model cannot be fitted
    (separation), naming the comparison.
    """
    table = population.table
    t = table["treatment"].to_numpy().astype(int)
    X, names = design_matrix(population)
    if X.shape[1] == 0:
        raise constant_covariates(population.comparison, dense_covariates(table), 0, population.attrition)  # type: ignore[misc]
    try:
        model = PropensityModel(**spec.analysis.propensity.model_dump()).fit(X, t, feature_names=names)
    except InputError as exc:
        raise NotEstimable(f"comparison {population.comparison!r}: the propensity model cannot be fitted: {exc}",
                           comparison=population.comparison, short="propensity model cannot be fitted",
                           step="propensity model", attrition=population.attrition) from None
    ps = model.ps_
    result = match(ps, t, **spec.analysis.matching.model_dump())
    set_ids = result.set_ids()
    weights = result.weights()
    threshold = spec.analysis.balance_threshold
    balance = balance_table(X, t, weights_after=weights, threshold=threshold, feature_names=names)
    dense = dense_covariates(table)
    dense_bal = balance.set_index("covariate").reindex(dense.columns).reset_index()
    dense_bal["covariate"] = dense.columns
    matched = set_ids >= 0
    return PropensityStep(
        ps=ps, preference=preference_score(ps, t), set_ids=set_ids, auc=ps_auc(ps, t), equipoise=equipoise(ps, t),
        n_covariates=len(names), balance=balance, table1=table1(dense, t, weights, dense_bal),
        n_target_before=int((t == 1).sum()), n_comparator_before=int((t == 0).sum()),
        n_target=int((matched & (t == 1)).sum()), n_comparator=int((matched & (t == 0)).sum()),
        caliper_width=float(result.caliper_width),
        table1_cells=binary_cells(dense.to_numpy(dtype=float), t, matched),
        balance_cells=binary_cells(X, t, matched),
    )


def _calibrate(outcomes: list[OutcomeEstimate]) -> dict[str, float] | None:
    """Fit the empirical null on the negative controls and calibrate every estimate in place."""
    controls = [o.numbers for o in outcomes if o.negative_control and "log_hr" in o.numbers]
    if len(controls) < 3:
        return None
    null = fit_null([c["log_hr"] for c in controls], [c["se_log_hr"] for c in controls])
    for o in outcomes:
        if "log_hr" not in o.numbers:
            continue
        b, se = o.numbers["log_hr"], o.numbers["se_log_hr"]
        cal = calibrate_ci(null, b, se)
        o.numbers |= {"calibrated_p": float(calibrate_p(null, [b], [se])[0]),
                      "calibrated_hr": float(np.exp(cal.log_rr)),
                      "calibrated_ci_low": float(np.exp(cal.ci_low)), "calibrated_ci_high": float(np.exp(cal.ci_high))}
    return {"mean": float(null.mean), "sd": float(null.sd), "n_controls": int(null.n_controls)}


def run_comparison(
    spec: StudySpec,
    name: str,
    extract: Callable[[], Population],
    extract_outcomes: Callable[[list[str]], pd.DataFrame],
    store: ArtifactStore,
    fingerprint: str,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> ComparisonRun:
    """One comparison through every step, each cached under its hash (see module docstring).

    *extract* builds the population without outcome columns; *extract_outcomes* returns the
    columns (person_id, <o>_event, <o>_days, <o>_prior) of the outcomes it is given. The outcomes
    not yet in the store are extracted in one query and stored one by one, so that a changed
    outcome is extracted and estimated again while everything else is reused.
    """
    say = progress or (lambda _msg: None)
    comp = spec.comparisons[name]
    hashes = part_hashes(spec, name)
    say(f"{name}: cohorts and analysis table")
    pop_key = store.key(fingerprint, hashes["population"])
    population = store.get_or_compute("population", pop_key, extract, force=force)
    problem = empty_comparison(name, comp.target, comp.comparator, population.attrition, population.table,
                               spec.min_cell_count)
    if problem is not None:
        raise problem
    say(f"{name}: propensity model and matching")
    ps_step = store.get_or_compute("propensity", store.key(pop_key, hashes["propensity"]),
                                   lambda: propensity_step(spec, population), force=force)
    attrition = matched_attrition(spec, name, population.attrition, ps_step)
    if not ps_step.n_target or not ps_step.n_comparator:
        m = spec.analysis.matching
        raise NotEstimable(f"comparison {name!r}: matching left nobody (no pairs within the caliper of {m.caliper:g} "
                           f"on the {m.caliper_scale} scale)", comparison=name, short="no pairs within the caliper",
                           step="matching", attrition=attrition)
    t = population.table["treatment"].to_numpy().astype(int)
    labels = (comp.target, comp.comparator)
    window = spec.time_at_risk.max_follow_up_days
    estimates = []
    outcomes = _outcomes(spec, name)
    extract_keys = {o: store.key(pop_key, spec.outcomes[o], spec.concept_sets[spec.outcomes[o].concept_set])
                    for o in outcomes}
    missing = [o for o in outcomes if force or not store.has("outcome_extract", extract_keys[o])]
    batch = extract_outcomes(missing) if missing else None

    def one_outcome(o: str) -> pd.DataFrame:
        frame = batch if batch is not None and o in missing else extract_outcomes([o])  # else: a damaged artefact
        return frame[["person_id", f"{o}_event", f"{o}_days", f"{o}_prior"]].copy()

    notes: dict[str, str] = {}
    for outcome in outcomes:
        say(f"{name}: outcome {outcome}")
        extract_key = extract_keys[outcome]
        columns = store.get_or_compute("outcome_extract", extract_key, lambda o=outcome: one_outcome(o), force=force)
        table = population.table[["person_id", "treatment"]].merge(columns, on="person_id", how="left", validate="1:1")
        key = store.key(extract_key, hashes["propensity"], hashes[f"outcome:{outcome}"])
        estimates.append(store.get_or_compute(
            "outcome", key,
            lambda o=outcome, tb=table: estimate_outcome(
                outcome_frame(tb, o, ps_step.set_ids), o,
                negative_control=o in comp.negative_controls, settings=spec.analysis.outcome_model,
                labels=labels, risk_window=float(window) if window else None),
            force=force))
        if not (estimates[-1].numbers["events_target"] or estimates[-1].numbers["events_comparator"]):
            notes[outcome] = where_events_emptied(table, outcome, ps_step.set_ids, spec.min_cell_count)
    null = _calibrate(estimates)
    max_smd = float(np.nanmax(np.abs(ps_step.balance["smd_after"]))) if len(ps_step.balance) else float("nan")
    total_events = sum(o.numbers["events_target"] + o.numbers["events_comparator"]
                       for o in estimates if not o.negative_control) / max(1, len(comp.outcomes))
    diags = [
        dx.balance_diagnostic(max_smd, spec.analysis.balance_threshold),
        dx.equipoise_diagnostic(ps_step.equipoise),
        dx.mdrr_diagnostic(dx.mdrr(int(total_events), ps_step.n_target, ps_step.n_comparator)),
        dx.ease_diagnostic(null["mean"] if null else None, null["sd"] if null else None),
    ]
    return ComparisonRun(name, comp.target, comp.comparator, attrition, ps_step, t, estimates, diags,
                         null, warnings=list(population.warnings), outcome_notes=notes)


def matched_attrition(spec: StudySpec, name: str, attrition: pd.DataFrame, ps_step: PropensityStep) -> pd.DataFrame:
    """The comparison's attrition continued through matching (people matched in each arm)."""
    m = spec.analysis.matching
    rows = attrition[attrition["cohort"] == name]
    first = int(rows["step_index"].max()) + 1 if len(rows) else 0
    how = (f"1:{m.ratio}{' variable ratio' if m.variable_ratio else ''} on the propensity score, caliper "
           f"{m.caliper:g} ({m.caliper_scale})")
    extra = pd.DataFrame([
        {"cohort": name, "step_index": first, "step": "matched_target", "description": f"target matched, {how}",
         "persons": ps_step.n_target},
        {"cohort": name, "step_index": first + 1, "step": "matched_comparator", "description": f"comparator matched, {how}",
         "persons": ps_step.n_comparator},
    ])
    return pd.concat([attrition, extra], ignore_index=True)


def _outcomes(spec: StudySpec, name: str) -> list[str]:
    comp = spec.comparisons[name]
    return list(dict.fromkeys(comp.outcomes + comp.negative_controls))


def default_store(work_dir: Path) -> ArtifactStore:
    """The step cache in the work folder (row-level: never in the shareable output folder)."""
    return ArtifactStore(Path(work_dir) / "cache")
