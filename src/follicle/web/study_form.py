"""Study-spec parts from the designer's forms: a cohort, and the study-wide settings (time at risk,
covariates, the list of named adjustments and the outcome model)."""

from __future__ import annotations

from typing import Any

from follicle.web.forms import Fields

MAX_CRITERIA = 20
MAX_ADJUSTMENTS = 12
KINDS = ("crude", "matching", "stratification", "iptw")
ANCHORS = ("index", "cohort_start", "cohort_end")
#: the options the designer edits for each kind (the others, e.g. a matching seed, are kept as they are)
KIND_OPTIONS = {"crude": (), "matching": ("caliper", "caliper_scale", "ratio", "variable_ratio", "order"),
                "stratification": ("n_strata", "base"), "iptw": ("estimand", "stabilized", "truncate_percentile")}


def adjustments_of(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """A draft's adjustments as the designer lists them: ``adjustments``, or an older single
    ``matching`` block as one matching adjustment named ``matching`` (as the spec reads it)."""
    if isinstance(analysis.get("adjustments"), list):
        return [dict(a) for a in analysis["adjustments"] if isinstance(a, dict)]
    if "matching" in analysis:
        return [{"kind": "matching", "name": "matching", **(analysis.get("matching") or {})}]
    return [{"kind": "matching", "name": "matching"}]


def _kind_options(f: Fields, i: int, kind: str) -> dict[str, Any]:
    """The options of adjustment row *i* that the form shows for *kind*."""
    key = f"adj_{i}_"
    if kind == "matching":
        return {"caliper": f.float(key + "caliper", positive=True) or 0.1,
                "caliper_scale": f.choice(key + "caliper_scale", ("std_logit", "logit", "ps"), "std_logit"),
                "ratio": f.int(key + "ratio", minimum=1, maximum=100) or 1,
                "variable_ratio": f.flag(key + "variable_ratio"),
                "order": f.choice(key + "order", ("random", "closest"), "random")}
    if kind == "stratification":
        return {"n_strata": f.int(key + "n_strata", minimum=2, maximum=100) or 5,
                "base": f.choice(key + "base", ("all", "treated", "untreated"), "all")}
    if kind == "iptw":
        trunc = f.float(key + "truncate_percentile", positive=True)
        if trunc is not None and trunc >= 50:
            f.problems.append(f"{key}truncate_percentile: a percentile below 50 (e.g. 1 for the 1st and 99th); got {trunc:g}")
            trunc = None
        return {"estimand": f.choice(key + "estimand", ("ate", "att"), "ate"), "stabilized": f.flag(key + "stabilized"),
                "truncate_percentile": trunc}
    return {}


def adjustments_from_form(f: Fields, old: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """(adjustments, primary) from the adjustment rows of the settings form.

    Row *i* (``adj_<i>_name``, ``adj_<i>_kind``, its kind's options, ``adj_<i>_remove``) edits the
    draft's adjustment *i*; a row past the last (name given) adds one. A row whose kind changed
    gets the new kind's defaults (the options shown were the old kind's). Options the form does not
    show (a matching ``seed``, ``stratify_by_pair``) are kept.
    """
    n = f.int("n_adjustments", minimum=0, maximum=MAX_ADJUSTMENTS) or 0
    out: list[dict[str, Any]] = []
    for i in range(n + 1):
        if i == n and not f.raw(f"adj_{i}_name"):
            continue  # the empty row for a new adjustment
        if f.flag(f"adj_{i}_remove"):
            continue
        if len(out) >= MAX_ADJUSTMENTS:
            f.problems.append(f"adjustments: at most {MAX_ADJUSTMENTS}")
            break
        kind = f.choice(f"adj_{i}_kind", KINDS)
        before = old[i] if i < len(old) else {}
        adj = {k: v for k, v in before.items() if k not in ("kind", "name") and k not in KIND_OPTIONS.get(kind, ())} \
            if before.get("kind") == kind else {}
        adj = {"kind": kind, "name": f.name(f"adj_{i}_name"), **adj}
        if before.get("kind") == kind:
            adj.update(_kind_options(f, i, kind))
        out.append(adj)
    if not out:
        f.problems.append("adjustments: keep at least one adjustment")
    names = [a["name"] for a in out]
    primary = f.raw("primary") or None
    if primary is not None and (primary not in names or primary == names[0]):
        primary = None  # the first listed is primary by default (also when the chosen one was removed or renamed)
    return out, primary


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
        "start_offset": f.int("tar_start_offset") or 0, "start_anchor": f.choice("tar_start_anchor", ANCHORS),
        "end_offset": f.int("tar_end_offset") if f.int("tar_end_offset") is not None else 99999,
        "end_anchor": f.choice("tar_end_anchor", ANCHORS),
        "censor_at_observation_end": f.flag("censor_at_observation_end"), "censor_at_death": f.flag("censor_at_death"),
    }
    max_fu = f.int("max_follow_up_days", minimum=1)
    if max_fu is not None:
        tar["max_follow_up_days"] = max_fu
    min_days = f.int("min_days_at_risk", minimum=0)
    if min_days is not None:
        tar["min_days_at_risk"] = min_days
    out["time_at_risk"] = tar
    cov = dict(data.get("covariates") or {})
    cov.update({"demographics": f.flag("demographics"), "concept_sets": f.names("covariate_sets"),
                "window": {"start": f.int("cov_window_start"), "end": f.int("cov_window_end")},
                "all_conditions": f.flag("all_conditions"), "all_drugs": f.flag("all_drugs")})
    if f.flag("default_set"):
        cov["default_set"] = cov.get("default_set") if isinstance(cov.get("default_set"), dict) else True
    else:
        cov.pop("default_set", None)
    out["covariates"] = cov
    analysis = dict(data.get("analysis") or {})
    ps = dict(analysis.get("propensity") or {})
    ps["penalty"] = f.choice("ps_penalty", ("none", "l1", "l2"))
    analysis["propensity"] = ps
    adjustments, primary = adjustments_from_form(f, adjustments_of(analysis))
    analysis.pop("matching", None)  # an older single block becomes the list
    analysis["adjustments"] = adjustments
    if primary is None:
        analysis.pop("primary", None)
    else:
        analysis["primary"] = primary
    om = dict(analysis.get("outcome_model") or {})
    om.update({"ties": f.choice("ties", ("efron", "breslow")), "robust_se": f.flag("robust_se"),
               "stratify_by_pair": f.flag("stratify_by_pair")})
    analysis["outcome_model"] = om
    analysis["balance_threshold"] = f.float("balance_threshold", positive=True) or 0.1
    out["analysis"] = analysis
    out["min_cell_count"] = f.int("min_cell_count", minimum=5) or 10
    return out
