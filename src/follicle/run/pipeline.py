"""The comparative study as a row of cached steps.

cohorts -> analysis table -> propensity model -> per adjustment (crude, matching, stratification,
IPTW) its cohort and balance -> per outcome and adjustment (Cox, and for unweighted designs KM,
log-rank, risks, PH test; E-value) -> negative-control calibration and diagnostics per adjustment.
Each step's artefact (population, propensity model, each adjustment, each outcome extract and
each outcome estimate under each adjustment) is stored under the hash of the spec parts that
produced it and the content hashes of the CDM tables the study reads (:mod:`follicle.run.cache`,
:func:`follicle.cdm.fingerprint.table_hashes`), so changing one outcome or one adjustment
recomputes only that, and a change to any row of a table read recomputes everything.
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
    PropensityModel,
    calibrate_ci,
    calibrate_p,
    equipoise,
    fit_null,
    preference_score,
    ps_auc,
)
from follicle.errors import InputError
from follicle.run import diagnostics as dx
from follicle.run.adjust import AdjustedCohort, adjust
from follicle.run.degenerate import (
    ESTIMATED,
    NOT_ESTIMABLE,
    NotEstimable,
    constant_covariates,
    empty_comparison,
    where_events_emptied,
)
from follicle.run.cache import ArtifactStore
from follicle.run.estimate import OutcomeEstimate, estimate_outcome, outcome_frame
from follicle.study.hashing import part_hashes
from follicle.study.population import Population
from follicle.study.settings import PS_KINDS
from follicle.study.spec import StudySpec

Progress = Callable[[str], None]


@dataclass
class PropensityStep:
    """The propensity model of one comparison, shared by its adjustments (unsuppressed)."""

    ps: np.ndarray
    preference: np.ndarray
    auc: float
    equipoise: float
    n_covariates: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class ComparisonRun:
    """Everything computed for one comparison: per adjustment its cohort, estimates, calibration
    and diagnostics; ``primary`` names the adjustment of the top-level results. One that could not
    be estimated has ``status`` ``"not estimable"``, the ``reason``, the attrition computed so far,
    no propensity step and no adjustments."""

    name: str
    target: str
    comparator: str
    attrition: pd.DataFrame
    propensity: PropensityStep | None
    treatment: np.ndarray
    adjusted: dict[str, AdjustedCohort]
    estimates: dict[str, list[OutcomeEstimate]]
    diagnostics: dict[str, list[dx.Diagnostic]]
    nulls: dict[str, dict[str, float] | None]
    primary: str
    warnings: list[str] = field(default_factory=list)
    status: str = ESTIMATED
    reason: str | None = None
    short_reason: str | None = None
    outcome_notes: dict[str, str] = field(default_factory=dict)  # outcome without events -> where they ran out


    @property
    def outcomes(self) -> list[OutcomeEstimate]:
        """The primary adjustment's estimates, one per outcome and negative control."""
        return self.estimates.get(self.primary, [])

    @property
    def null(self) -> dict[str, float] | None:
        return self.nulls.get(self.primary)


def not_estimable_run(spec: StudySpec, exc: NotEstimable) -> ComparisonRun:
    """The record of a comparison that stopped with *exc*: its attrition so far and the reason."""
    comp = spec.comparisons[exc.comparison]
    attrition = exc.attrition if exc.attrition is not None else pd.DataFrame(
        columns=["cohort", "step_index", "step", "description", "persons"])
    return ComparisonRun(exc.comparison, comp.target, comp.comparator, attrition, None, np.array([], dtype=int), {}, {},
                         {}, {}, spec.analysis.primary_adjustment.name, warnings=[exc.render()], status=NOT_ESTIMABLE,
                         reason=str(exc), short_reason=exc.short)


def dense_covariates(table: pd.DataFrame) -> pd.DataFrame:
    """The dense propensity covariates of an analysis table: every ``cov_`` column (demographics
    included, as ``cov_age`` and ``cov_female``, when the spec asks for them)."""
    cols = {c.removeprefix("cov_"): table[c].astype(float) for c in table.columns if c.startswith("cov_")}
    return pd.DataFrame(cols, index=table.index)


def design_matrix(population: Population) -> tuple[Any, list[str]]:
    """Dense covariates, plus the sparse ones (one column per covariate id) when the spec asks for them.

    Sparse covariates stay sparse (CSR; int32 indices): a person x covariate matrix of the default
    set at 1M persons and tens of thousands of covariates never exists densely.
    """
    dense = dense_covariates(population.table)
    dense = dense.loc[:, dense.std(ddof=0) > 0]  # a constant column carries no information
    names = list(dense.columns)
    sp = population.sparse_covariates
    if sp is None or sp.empty:
        return dense.to_numpy(), names
    people = population.table["person_id"].to_numpy()
    who = sp["person_id"].to_numpy()
    if people.size > 1 and np.all(people[1:] > people[:-1]):  # the analysis table is sorted by person_id
        row = np.minimum(np.searchsorted(people, who), people.size - 1)
        row = np.where(people[row] == who, row, -1)
    else:
        row = pd.Index(people).get_indexer(who)
    ids, col = np.unique(sp["covariate_id"].to_numpy(), return_inverse=True)
    keep = row >= 0
    mat = sparse.csc_matrix((np.ones(int(keep.sum())), (row[keep].astype(np.int32), col[keep].astype(np.int32))),
                            shape=(len(people), len(ids)))
    mat.sum_duplicates()
    mat.data[:] = 1.0  # a person has a covariate or not
    # a covariate everyone has (or nobody) carries no information (FeatureExtraction drops it too)
    nnz = np.diff(mat.indptr)
    varies = (nnz > 0) & (nnz < len(people))
    mat, ids = mat[:, varies].tocsr(), ids[varies]
    ref = population.covariate_ref.set_index("covariate_id")["covariate_name"] if len(population.covariate_ref) else {}
    names += [str(ref.get(i, i)) for i in ids]
    if dense.shape[1] == 0:
        return mat, names
    return sparse.hstack([sparse.csr_matrix(dense.to_numpy()), mat], format="csr"), names


def propensity_step(spec: StudySpec, population: Population, X: Any, names: list[str]) -> PropensityStep:
    """Fit the PS model with the spec's settings (see :func:`design_matrix` for *X*).

    Raises :class:`NotEstimable` when no covariate varies or the model cannot be fitted
    (separation), naming the comparison.
    """
    t = population.table["treatment"].to_numpy().astype(int)
    if X.shape[1] == 0:
        raise constant_covariates(population.comparison, dense_covariates(population.table), 0,  # type: ignore[misc]
                                  population.attrition)
    try:
        model = PropensityModel(**spec.analysis.propensity.model_dump()).fit(X, t, feature_names=names)
    except InputError as exc:
        raise NotEstimable(f"comparison {population.comparison!r}: the propensity model cannot be fitted: {exc}",
                           comparison=population.comparison, short="propensity model cannot be fitted",
                           step="propensity model", attrition=population.attrition) from None
    ps = model.ps_
    return PropensityStep(ps=ps, preference=preference_score(ps, t), auc=ps_auc(ps, t), equipoise=equipoise(ps, t),
                          n_covariates=len(names))


def _calibrate(outcomes: list[OutcomeEstimate]) -> dict[str, float] | None:
    """Fit the empirical null on the negative controls and calibrate every estimate in place."""
    def finite(n: dict[str, Any]) -> bool:  # an infinite (monotone-likelihood) estimate calibrates nothing
        return "log_hr" in n and bool(np.isfinite(n["log_hr"]) and np.isfinite(n["se_log_hr"]))

    controls = [o.numbers for o in outcomes if o.negative_control and finite(o.numbers)]
    if len(controls) < 3:
        return None
    null = fit_null([c["log_hr"] for c in controls], [c["se_log_hr"] for c in controls])
    for o in outcomes:
        if not finite(o.numbers):
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
    outcome is extracted and estimated again while everything else is reused. The propensity model
    is fitted once and shared by the adjustments; each outcome is estimated under each adjustment.
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
    t = population.table["treatment"].to_numpy().astype(int)
    X, names = design_matrix(population)
    dense = dense_covariates(population.table)
    ps_step, ps_problem = None, None
    if spec.analysis.needs_propensity:
        say(f"{name}: propensity model")
        try:
            ps_step = store.get_or_compute("propensity", store.key(pop_key, hashes["propensity"]),
                                           lambda: propensity_step(spec, population, X, names), force=force)
        except NotEstimable as exc:
            if all(a.kind in PS_KINDS for a in spec.analysis.adjustments):
                raise  # nothing of the comparison can be estimated
            ps_problem = exc  # the crude adjustments still can
    adjusted: dict[str, AdjustedCohort] = {}
    skipped: dict[str, str] = {}  # adjustment -> why it has no estimates (short)
    messages: dict[str, str] = {}
    for adj in spec.analysis.adjustments:
        say(f"{name}: adjustment {adj.name} ({adj.kind})")
        if ps_problem is not None and adj.kind in PS_KINDS:
            skipped[adj.name] = ps_problem.short
            adjusted[adj.name] = unadjustable(adj, ps_problem.short)
            continue
        adjusted[adj.name] = store.get_or_compute(
            "adjustment", store.key(pop_key, hashes[f"adjustment:{adj.name}"]),
            lambda a=adj: adjust(a, t, None if ps_step is None else ps_step.ps, X, names, dense,
                                 threshold=spec.analysis.balance_threshold), force=force)
        if adjusted[adj.name].n_target == 0 or adjusted[adj.name].n_comparator == 0:
            messages[adj.name], skipped[adj.name] = _nobody(adj)
    attrition = adjusted_attrition(spec, name, population.attrition, adjusted)
    if len(skipped) == len(adjusted):  # no adjustment left anybody to compare
        first = spec.analysis.adjustments[0]
        raise NotEstimable(f"comparison {name!r}: {messages.get(first.name, skipped[first.name])}", comparison=name,
                           short=skipped[first.name], step="matching" if first.kind == "matching" else first.kind,
                           attrition=attrition)

    labels = (comp.target, comp.comparator)
    window = spec.time_at_risk.max_follow_up_days
    outcomes = _outcomes(spec, name)
    extract_keys = {o: store.key(pop_key, spec.outcomes[o], spec.concept_sets[spec.outcomes[o].concept_set])
                    for o in outcomes}
    missing = [o for o in outcomes if force or not store.has("outcome_extract", extract_keys[o])]
    batch = extract_outcomes(missing) if missing else None

    def one_outcome(o: str) -> pd.DataFrame:
        frame = batch if batch is not None and o in missing else extract_outcomes([o])  # else: a damaged artefact
        return frame[["person_id", f"{o}_event", f"{o}_days", f"{o}_prior"]].copy()

    estimates: dict[str, list[OutcomeEstimate]] = {a.name: [] for a in spec.analysis.adjustments}
    notes: dict[str, str] = {}
    primary = spec.analysis.primary_adjustment.name
    for outcome in outcomes:
        say(f"{name}: outcome {outcome}")
        extract_key = extract_keys[outcome]
        columns = store.get_or_compute("outcome_extract", extract_key, lambda o=outcome: one_outcome(o), force=force)
        table = population.table[["person_id", "treatment", "tar_start_day"]].merge(
            columns, on="person_id", how="left", validate="1:1")
        for adj in spec.analysis.adjustments:
            if adj.name in skipped:
                estimates[adj.name].append(OutcomeEstimate(outcome, outcome in comp.negative_controls, {},
                                                           not_estimable=skipped[adj.name]))
                continue
            key = store.key(extract_key, hashes[f"adjustment:{adj.name}"], hashes[f"outcome:{outcome}"])
            estimates[adj.name].append(store.get_or_compute(
                "outcome", key,
                lambda o=outcome, tb=table, a=adj: estimate_outcome(
                    outcome_frame(tb, o, adjusted[a.name]), o,
                    negative_control=o in comp.negative_controls, settings=spec.analysis.outcome_model,
                    adjustment=a, labels=labels, risk_window=float(window) if window else None),
                force=force))
        first = estimates[primary][-1].numbers
        if first and not (first["events_target"] or first["events_comparator"]):
            notes[outcome] = where_events_emptied(table, outcome, adjusted[primary].weights, spec.min_cell_count)
    nulls = {a: _calibrate(e) for a, e in estimates.items()}
    diags = {a.name: _diagnostics(spec, adjusted[a.name], ps_step, nulls[a.name], estimates[a.name])
             for a in spec.analysis.adjustments}
    warnings = list(population.warnings) + ([ps_problem.render()] if ps_problem is not None else [])
    return ComparisonRun(name, comp.target, comp.comparator, attrition, ps_step, t, adjusted, estimates,
                         diags, nulls, primary, warnings=warnings, outcome_notes=notes)


def unadjustable(adj: Any, reason: str) -> AdjustedCohort:
    """An adjustment that could not be made (its propensity model failed): nobody analysed."""
    empty = pd.DataFrame({"covariate": pd.Series(dtype=str), "smd_before": pd.Series(dtype=float),
                          "smd_after": pd.Series(dtype=float), "status": pd.Series(dtype=str)})
    return AdjustedCohort(adj.name, adj.kind, "not estimable", np.zeros(0), None, False, 0, 0, empty, empty.iloc[:0],
                          {}, [f"not estimable: {reason}"])


def _nobody(adj: Any) -> tuple[str, str]:
    """(message, short reason) for an adjustment that left an arm empty."""
    if adj.kind == "matching":
        return (f"matching left nobody (no pairs within the caliper of {adj.caliper:g} on the {adj.caliper_scale} "
                "scale)"), "no pairs within the caliper"
    return f"adjustment {adj.name!r} ({adj.kind}) left an arm empty", f"{adj.kind} left an arm empty"


def _diagnostics(spec: StudySpec, adjusted: AdjustedCohort, ps_step: PropensityStep | None,
                 null: dict[str, float] | None, estimates: list[OutcomeEstimate]) -> list[dx.Diagnostic]:
    """The diagnostics of one adjustment (balance, equipoise, EASE), and each of its estimates'
    (those three and the estimate's own MDRR), stored on the estimates with ``mdrr``."""
    equipoise_value = None if ps_step is None else ps_step.equipoise
    for o in estimates:
        n = o.numbers
        if not n:  # not estimable: nothing to judge
            continue
        events = n["events_target"] + n["events_comparator"]
        o.diagnostics = dx.estimate_diagnostics(
            max_abs_smd=adjusted.max_abs_smd, balance_threshold=spec.analysis.balance_threshold,
            equipoise=equipoise_value, events=events, n_target=n["n_target"], n_comparator=n["n_comparator"], null=null)
        mdrr = dx.mdrr(events, n["n_target"], n["n_comparator"])
        n["mdrr"] = mdrr if np.isfinite(mdrr) else None
    return [
        dx.balance_diagnostic(adjusted.max_abs_smd, spec.analysis.balance_threshold),
        dx.equipoise_diagnostic(equipoise_value),
        dx.ease_diagnostic(null["mean"] if null else None, null["sd"] if null else None),
    ]


#: attrition step prefix of each adjustment kind that selects people (crude keeps everybody: no step)
ATTRITION_STEP = {"matching": "matched", "stratification": "stratified", "iptw": "weighted"}


def adjusted_attrition(spec: StudySpec, name: str, attrition: pd.DataFrame,
                       adjusted: dict[str, AdjustedCohort]) -> pd.DataFrame:
    """The comparison's attrition continued through each adjustment, per arm, with the adjustment's
    name in column ``adjustment``: matching, the people in matched sets (``matched_target``,
    ``matched_comparator``); stratification, the people in PS strata that hold both arms
    (``stratified_*``); IPTW, the people weighted (``weighted_*``: everybody, as truncation caps
    weights and removes nobody); crude, no step (nobody removed). The primary adjustment's steps
    carry no suffix, another's end in ``_<name>`` (``matched_target_<name>``)."""
    rows = attrition[attrition["cohort"] == name]
    nxt = int(rows["step_index"].max()) + 1 if len(rows) else 0
    extra = []
    primary = spec.analysis.primary_adjustment.name
    for adj in spec.analysis.adjustments:
        if adj.kind not in ATTRITION_STEP:
            continue
        done = adjusted[adj.name]
        suffix = "" if adj.name == primary else f"_{adj.name}"
        if adj.kind == "matching":
            how = (f"matched, 1:{adj.ratio}{' variable ratio' if adj.variable_ratio else ''} on the propensity score, "
                   f"caliper {adj.caliper:g} ({adj.caliper_scale})")
        elif adj.kind == "stratification":
            how = f"in propensity-score strata holding both arms ({adj.n_strata} strata)"
        else:
            trunc = "" if adj.truncate_percentile is None else f", weights truncated at percentile {adj.truncate_percentile:g}"
            how = f"weighted (IPTW, {adj.estimand.upper()}{trunc}; nobody removed)"
        for arm, n in (("target", done.n_target), ("comparator", done.n_comparator)):
            extra.append({"cohort": name, "step_index": nxt, "step": f"{ATTRITION_STEP[adj.kind]}_{arm}{suffix}",
                          "description": f"{arm} {how}, adjustment {adj.name}", "persons": n, "adjustment": adj.name})
            nxt += 1
    return pd.concat([attrition, pd.DataFrame(extra)], ignore_index=True) if extra else attrition


def _outcomes(spec: StudySpec, name: str) -> list[str]:
    comp = spec.comparisons[name]
    return list(dict.fromkeys(comp.outcomes + comp.negative_controls))


def default_store(work_dir: Path) -> ArtifactStore:
    """The step cache in the work folder (row-level: never in the shareable output folder)."""
    return ArtifactStore(Path(work_dir) / "cache")
