"""Study-spec parts from the designer's forms: a cohort, and the study-wide settings."""

from __future__ import annotations

from typing import Any

from follicle.web.forms import Fields

MAX_CRITERIA = 20


def _window(f: Fields, prefix: str) -> dict[str, Any]:
    return {"start": f.int(f"{prefix}_start"), "end": f.int(f"{prefix}_end")}


def cohort_from_form(f: Fields, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """A cohort (dict, as in a spec) from the cohort editor's fields; parts the form does not edit
    (route filter, washout sets) are kept from *old*."""
    old = old or {}
    cohort: dict[str, Any] = {k: v for k, v in old.items() if k in ("route", "washout_concept_sets")}
    if f.text("description"):
        cohort["description"] = f.text("description")
    cohort["entry"] = {"concept_set": f.name("entry")}
    cohort["prior_observation_days"] = f.int("prior_observation_days", minimum=0) or 0
    washout = f.int("washout_days", minimum=0)
    if washout is not None:
        cohort["washout_days"] = washout
    count = f.int("min_exposures", minimum=1)
    if count is not None:
        cohort["min_exposures"] = {"count": count, "window": _window(f, "min_exposures_window")}
    age_min, age_max = f.int("age_min", minimum=0, maximum=150), f.int("age_max", minimum=0, maximum=150)
    if age_min is not None or age_max is not None:
        cohort["age"] = {"min": age_min, "max": age_max}
    gap = f.int("exposure_gap_days", minimum=0)
    if gap is not None:
        cohort["exposure_gap_days"] = gap
    for kind in ("require", "exclude"):
        rows = []
        n = f.int(f"n_{kind}", minimum=0, maximum=MAX_CRITERIA) or 0
        for i in range(n):
            target = f.raw(f"{kind}_{i}_set")
            if not target:
                continue
            crit: dict[str, Any] = {"window": _window(f, f"{kind}_{i}")}
            if target.startswith("cohort:"):
                crit["cohort"] = target.removeprefix("cohort:")
            else:
                crit["concept_set"] = f.name(f"{kind}_{i}_set")
            rows.append(crit)
        cohort[kind] = rows
    return cohort


def settings_from_form(f: Fields, data: dict[str, Any]) -> dict[str, Any]:
    """Description, time at risk, covariates, analysis settings and min_cell_count from the settings form."""
    out: dict[str, Any] = {"description": f.text("description")}
    tar = {
        "start_offset": f.int("tar_start_offset") or 0, "start_anchor": f.choice("tar_start_anchor", ("index", "cohort_end")),
        "end_offset": f.int("tar_end_offset") if f.int("tar_end_offset") is not None else 99999,
        "end_anchor": f.choice("tar_end_anchor", ("index", "cohort_end")),
        "censor_at_observation_end": f.flag("censor_at_observation_end"), "censor_at_death": f.flag("censor_at_death"),
    }
    max_fu = f.int("max_follow_up_days", minimum=1)
    if max_fu is not None:
        tar["max_follow_up_days"] = max_fu
    out["time_at_risk"] = tar
    cov = dict(data.get("covariates") or {})
    cov.update({"demographics": f.flag("demographics"), "concept_sets": f.names("covariate_sets"),
                "window": {"start": f.int("cov_window_start"), "end": f.int("cov_window_end")},
                "all_conditions": f.flag("all_conditions"), "all_drugs": f.flag("all_drugs")})
    out["covariates"] = cov
    analysis = dict(data.get("analysis") or {})
    ps = dict(analysis.get("propensity") or {})
    ps["penalty"] = f.choice("ps_penalty", ("none", "l1", "l2"))
    analysis["propensity"] = ps
    matching = dict(analysis.get("matching") or {})
    matching.update({"caliper": f.float("caliper", positive=True) or 0.1,
                     "caliper_scale": f.choice("caliper_scale", ("std_logit", "logit", "ps")),
                     "ratio": f.int("ratio", minimum=1, maximum=100) or 1, "variable_ratio": f.flag("variable_ratio"),
                     "order": f.choice("order", ("random", "closest")), "seed": f.int("seed") or 0})
    analysis["matching"] = matching
    om = dict(analysis.get("outcome_model") or {})
    om.update({"ties": f.choice("ties", ("efron", "breslow")), "robust_se": f.flag("robust_se"),
               "stratify_by_pair": f.flag("stratify_by_pair")})
    analysis["outcome_model"] = om
    analysis["balance_threshold"] = f.float("balance_threshold", positive=True) or 0.1
    out["analysis"] = analysis
    out["min_cell_count"] = f.int("min_cell_count", minimum=5) or 10
    return out
