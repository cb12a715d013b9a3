"""Text generated from the spec and the results: the methods paragraph and automatic caveats."""

from __future__ import annotations

from typing import Any

from follicle.study.settings import AnalysisSettings
from follicle.study.spec import StudySpec, Window

FEW_EVENTS = 20  # below this many events in total an HR is unstable; flagged, not withheld


def _cohort_sentence(spec: StudySpec, name: str) -> str:
    c = spec.cohorts[name]
    first = f"first {c.entry.concept_set}" if c.entry else f"first entry of the ATLAS definition {c.atlas.path}"  # type: ignore[union-attr]
    parts = [f"{name} ({c.description or first})"]
    if c.min_exposures:
        parts.append(f"at least {c.min_exposures.count} exposures {window_text(c.min_exposures.window)}")
    if c.prior_observation_days:
        parts.append(f"{c.prior_observation_days} days of prior observation")
    if c.washout_days:
        parts.append(f"no exposure in the {c.washout_days} days before index (new users)")
    for crit in c.require:
        parts.append(f"required {crit.concept_set or 'membership of ' + str(crit.cohort)} {window_text(crit.window)}")
    for crit in c.exclude:
        parts.append(f"excluded if {crit.concept_set or 'in ' + str(crit.cohort)} {window_text(crit.window)}")
    if c.age and (c.age.min is not None or c.age.max is not None):
        lo, hi = c.age.min, c.age.max
        parts.append(f"aged {lo}-{hi}" if lo is not None and hi is not None
                     else f"aged {lo} or older" if lo is not None else f"aged {hi} or younger")
    return parts[0] + (": " + "; ".join(parts[1:]) if len(parts) > 1 else "")


#: an end offset at least this large runs to the end of the data (99999 days is the OHDSI idiom)
OPEN_END_DAYS = 9999


def window_text(window: Window) -> str:
    """A covariate or criterion window in words: "from 365 days before index to the index date"."""
    def day(d: int | None, end: bool) -> str:
        if d is None:
            return "the end of observation" if end else "the start of each person's records"
        if d == 0:
            return "the index date"
        return f"{abs(d)} day{'s' if abs(d) != 1 else ''} {'before' if d < 0 else 'after'} index"

    return f"from {day(window.start, False)} to {day(window.end, True)}"


def time_at_risk_text(spec: StudySpec) -> str:
    """The time at risk in words, with "the end of observation" for an open end (no "day 99999")."""
    tar = spec.time_at_risk

    def point(offset: int, anchor: str, end: bool) -> str:
        what = ("the index date" if anchor in ("index", "cohort_start")
                else "the cohort end (the end of the exposure era holding the index)")
        if end and offset >= OPEN_END_DAYS:
            return "the end of observation" if tar.censor_at_observation_end else f"{offset} days after {what}"
        if offset == 0:
            return what
        return f"{abs(offset)} day{'s' if abs(offset) != 1 else ''} {'after' if offset > 0 else 'before'} {what}"

    stops = [s for s, on in (("the end of observation", tar.censor_at_observation_end), ("death", tar.censor_at_death)) if on]
    text = (f"Time at risk ran from {point(tar.start_offset, tar.start_anchor, False)} to "
            f"{point(tar.end_offset, tar.end_anchor, True)}")
    if tar.max_follow_up_days:
        text += f", at most {tar.max_follow_up_days} days"
    if tar.end_offset >= OPEN_END_DAYS and tar.censor_at_observation_end:
        stops = stops[1:]  # already the end
    if stops:
        text += ", censored at " + " and at ".join(stops)
    if tar.min_days_at_risk == 1:
        text += "; people whose time at risk ended on the day it started were left out"
    elif tar.min_days_at_risk > 1:
        text += f"; people with fewer than {tar.min_days_at_risk} days between its start and end were left out"
    return text + "."


def methods_paragraph(spec: StudySpec) -> str:
    """A methods paragraph a reader can check against the spec (generated, not hand-written)."""
    a = spec.analysis
    cohorts = sorted({n for comp in spec.comparisons.values() for n in (comp.target, comp.comparator)})
    cov = spec.covariates
    cov_text = ", ".join(filter(None, [
        "age and sex" if cov.demographics else "",
        f"{len(cov.concept_sets)} clinical characteristics ({', '.join(cov.concept_sets)})" if cov.concept_sets else "",
        "all conditions" if cov.all_conditions else "", "all drugs" if cov.all_drugs else "",
        (f"the default covariate set (sex, 5-year age group and index year; every {', '.join(cov.default_set.domains)} "
         f"concept from day {cov.default_set.long_term_start_days} and from day {cov.default_set.short_term_start_days} "
         f"to day {cov.default_set.end_days}, the compared exposures left out)") if cov.default_set else "",
    ]))
    window = window_text(cov.window)
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
        f"{time_at_risk_text(spec)} For each outcome, people with the outcome before the time "
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
        if comp.get("status", "estimated") != "estimated":
            out.append(f"{comp['title']}: not estimable ({comp.get('status_reason')}).")
            continue
        for adj in comp.get("adjustments", []):
            for d in adj["diagnostics"]:
                if d["status"] == "FAIL":
                    value = "not finite" if d["value"] is None else f"{d['value']:.3g}"
                    out.append(f"{comp['title']}, {adj['name']}: diagnostic '{d['name']}' failed ({value}, "
                               f"rule {d['threshold_text']}).")
                elif d["status"] == "NOT_EVALUATED":
                    out.append(f"{comp['title']}, {adj['name']}: diagnostic '{d['name']}' could not be evaluated.")
        for o in comp["outcomes"]:
            if o.get("status", "estimated") not in ("estimated", "suppressed"):
                continue  # its label in the tables says why (no events, not estimable)
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
