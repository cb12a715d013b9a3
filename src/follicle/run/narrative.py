"""Text generated from the spec and the results: the methods paragraph and automatic caveats."""

from __future__ import annotations

from typing import Any

from follicle.study.settings import AnalysisSettings
from follicle.study.spec import StudySpec

FEW_EVENTS = 20  # below this many events in total an HR is unstable; flagged, not withheld


def _cohort_sentence(spec: StudySpec, name: str) -> str:
    c = spec.cohorts[name]
    parts = [f"{name} ({c.description or 'first ' + c.entry.concept_set})"]
    if c.min_exposures:
        parts.append(f"at least {c.min_exposures.count} exposures")
    if c.prior_observation_days:
        parts.append(f"{c.prior_observation_days} days of prior observation")
    if c.washout_days:
        parts.append(f"no exposure in the {c.washout_days} days before index (new users)")
    for crit in c.require:
        parts.append(f"required {crit.concept_set or crit.cohort} before index")
    for crit in c.exclude:
        parts.append(f"excluded if {crit.concept_set or crit.cohort} before index")
    if c.age and (c.age.min is not None or c.age.max is not None):
        parts.append(f"aged {c.age.min if c.age.min is not None else 0}-{c.age.max if c.age.max is not None else 'any'}")
    return parts[0] + (": " + "; ".join(parts[1:]) if len(parts) > 1 else "")


def methods_paragraph(spec: StudySpec) -> str:
    """A methods paragraph a reader can check against the spec (generated, not hand-written)."""
    a = spec.analysis
    cohorts = sorted({n for comp in spec.comparisons.values() for n in (comp.target, comp.comparator)})
    tar = spec.time_at_risk
    cov = spec.covariates
    cov_text = ", ".join(filter(None, [
        "age and sex" if cov.demographics else "",
        f"{len(cov.concept_sets)} clinical characteristics ({', '.join(cov.concept_sets)})" if cov.concept_sets else "",
        "all conditions" if cov.all_conditions else "", "all drugs" if cov.all_drugs else "",
    ]))
    window = f"from day {cov.window.start} to day {cov.window.end} relative to index"
    comparisons = "; ".join(f"{c.target} vs {c.comparator}" for c in spec.comparisons.values())
    adjustments = "; ".join(adjustment_sentence(a, adj) for adj in a.adjustments)
    primary = a.primary_adjustment.name
    return (
        f"Cohorts were defined on the OMOP CDM: {'; '.join(_cohort_sentence(spec, n) for n in cohorts)}. "
        f"Comparisons: {comparisons}. People in both cohorts of a comparison were handled by rule "
        f"'{next(iter(spec.comparisons.values())).overlap}'. "
        + (f"A logistic propensity-score model ({'unpenalised' if a.propensity.penalty == 'none' else a.propensity.penalty + '-penalised, strength by ' + str(a.propensity.cv_folds) + '-fold cross-validation'}) "
           f"included {cov_text or 'no covariates'}, measured {window}. " if a.needs_propensity else "")
        + f"Each outcome was estimated under {len(a.adjustments)} adjustment{'s' if len(a.adjustments) > 1 else ''} "
        f"(primary: {primary}): {adjustments}. "
        f"Balance was judged by standardised mean differences (threshold {a.balance_threshold:g}). "
        f"Time at risk ran from day {tar.start_offset} after {tar.start_anchor.replace('_', ' ')} to day {tar.end_offset} "
        f"after {tar.end_anchor.replace('_', ' ')}"
        f"{', at most ' + str(tar.max_follow_up_days) + ' days' if tar.max_follow_up_days else ''}"
        f"{', censored at the end of observation' if tar.censor_at_observation_end else ''}"
        f"{' and at death' if tar.censor_at_death else ''}. For each outcome, people with the outcome before the time "
        f"at risk were excluded from that outcome's analysis. Hazard ratios came from Cox proportional-hazards models "
        f"({a.outcome_model.ties} ties); cumulative incidence (crude and matched analyses) from "
        f"Kaplan-Meier estimates with log-log confidence intervals and the log-rank test; proportional hazards were "
        f"checked with scaled Schoenfeld residuals (KM-transformed time). E-values (VanderWeele and Ding 2017) and "
        f"negative-control outcomes (empirical calibration, Schuemie et al. 2014, 2018) address residual confounding. "
        f"Counts below {spec.min_cell_count} are suppressed."
    )


def adjustment_sentence(settings: AnalysisSettings, adj: Any) -> str:
    """One adjustment in words, with the outcome model it implies."""
    if adj.kind == "crude":
        return f"{adj.name}, no adjustment (Cox model of treatment alone, model-based standard errors)"
    if adj.kind == "matching":
        unit = {"std_logit": "standard deviations of the logit of the propensity score",
                "logit": "on the logit scale", "ps": "on the propensity-score scale"}[adj.caliper_scale]
        order = f"in random order (seed {adj.seed})" if adj.order == "random" else "closest pair first"
        by_pair = settings.outcome_model.stratify_by_pair if adj.stratify_by_pair is None else adj.stratify_by_pair
        model = ("Cox model stratified by matched set" if by_pair else
                 "robust standard errors clustered on matched sets" if settings.outcome_model.robust_se else
                 "model-based standard errors")
        return (f"{adj.name}, 1:{adj.ratio}{' variable-ratio' if adj.variable_ratio else ''} greedy nearest-neighbour "
                f"matching without replacement, {order}, within a caliper of {adj.caliper:g} {unit} ({model})")
    if adj.kind == "stratification":
        return (f"{adj.name}, stratification into {adj.n_strata} strata at propensity-score quantiles "
                f"({'everyone' if adj.base == 'all' else 'the ' + adj.base}; Cox model stratified by stratum)")
    trunc = (f", truncated at the {adj.truncate_percentile:g}th and {100 - adj.truncate_percentile:g}th percentiles"
             if adj.truncate_percentile else "")
    return (f"{adj.name}, inverse probability of treatment weighting for the {adj.estimand.upper()}"
            f"{' (stabilised)' if adj.stabilized else ''}{trunc} (weighted Cox model, robust standard errors)")


def caveats(spec: StudySpec, results: dict[str, Any]) -> list[str]:
    """Automatic caveats a reviewer would raise, from the design and the numbers."""
    out: list[str] = []
    for name, c in spec.cohorts.items():
        if c.min_exposures and c.min_exposures.count >= 2 and spec.time_at_risk.start_anchor in ("index", "cohort_start"):
            out.append(
                f"Cohort {name} requires at least {c.min_exposures.count} exposures but follow-up starts at the first "
                "(index) exposure: the time until the later exposures is immortal (no outcome can end membership "
                "before it), which can bias hazard ratios towards benefit. Consider starting the time at risk at the "
                "qualifying exposure.")
    for comp in results["comparisons"]:
        for adj in comp.get("adjustments", []):
            for d in adj["diagnostics"]:
                if d["status"] == "FAIL":
                    value = "not finite" if d["value"] is None else f"{d['value']:.3g}"
                    out.append(f"{comp['title']}, {adj['name']}: diagnostic '{d['name']}' failed ({value}, "
                               f"rule {d['threshold_text']}).")
                elif d["status"] == "NOT_EVALUATED":
                    out.append(f"{comp['title']}, {adj['name']}: diagnostic '{d['name']}' could not be evaluated.")
        for o in comp["outcomes"]:
            ev = [o.get("events_target"), o.get("events_comparator")]
            if any(isinstance(e, str) for e in ev) or sum(e for e in ev if isinstance(e, int)) < FEW_EVENTS:
                out.append(f"{comp['title']}, {o['outcome']}: fewer than {FEW_EVENTS} events; the estimate is imprecise.")
            if o.get("ph_test_p") is not None and o["ph_test_p"] < 0.05:
                out.append(f"{comp['title']}, {o['outcome']}: the proportional-hazards test rejects (p = {o['ph_test_p']:.3g}); "
                           "the HR is an average over follow-up.")
        t_fu = next((o.get("mean_followup_days_target") for o in comp["outcomes"] if o.get("mean_followup_days_target")), None)
        c_fu = next((o.get("mean_followup_days_comparator") for o in comp["outcomes"] if o.get("mean_followup_days_comparator")), None)
        if t_fu and c_fu and max(t_fu, c_fu) / min(t_fu, c_fu) > 1.25:
            out.append(f"{comp['title']}: mean follow-up differs between arms ({t_fu:.0f} vs {c_fu:.0f} days); risks at the "
                       "end of follow-up are not comparable, prefer the hazard ratio and the KM curves.")
    return out
