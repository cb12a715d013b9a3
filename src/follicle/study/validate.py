"""Rules that relate fields of a study spec to each other, checked in one step.

The rules read the raw input (dicts from YAML, or models) defensively, so they run even when
some fields fail their own validation: a spec with a bad type *and* an unknown reference reports
both. Each problem names its field path.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _mapping(obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else {}


def _items(obj: Any) -> list[tuple[int, Any]]:
    return list(enumerate(obj)) if isinstance(obj, list) else []


def _window_problems(window: Any, loc: Loc) -> list[tuple[Loc, str]]:
    start, end = _get(window, "start"), _get(window, "end")
    if isinstance(start, int) and isinstance(end, int) and end < start:
        return [(loc, f"window ends before it starts (start {start}, end {end})")]
    return []


def _has_codes(concept_set: Any) -> bool:
    include = _get(concept_set, "include")
    if isinstance(include, (str, int)):
        return True
    return isinstance(include, list) and len(include) > 0


def cross_field_problems(data: Any) -> list[tuple[Loc, str]]:
    """Every cross-field problem of a spec as ``(field path, message)``."""
    problems: list[tuple[Loc, str]] = []
    sets = _mapping(_get(data, "concept_sets"))
    cohorts = _mapping(_get(data, "cohorts"))
    outcomes = _mapping(_get(data, "outcomes"))

    def ref_set(name: Any, loc: Loc) -> None:
        if isinstance(name, str) and name not in sets:
            problems.append((loc, f"unknown concept set {name!r}"))

    def ref_set_with_codes(name: Any, loc: Loc, what: str) -> None:
        if isinstance(name, str) and name in sets and not _has_codes(sets[name]):
            problems.append((loc, f"{what} concept set {name!r} has no codes"))

    edges: dict[str, set[str]] = {}
    for cname, cohort in cohorts.items():
        base: Loc = ("cohorts", cname)
        entry = _get(cohort, "entry")
        entry_set = _get(entry, "concept_set")
        ref_set(entry_set, (*base, "entry", "concept_set"))
        ref_set_with_codes(entry_set, (*base, "entry", "concept_set"), "the entry")
        route = _get(cohort, "route")
        if route is not None:
            ref_set(_get(route, "exclude_concept_set"), (*base, "route", "exclude_concept_set"))
            if isinstance(entry_set, str) and entry_set in sets:
                domain = _get(sets[entry_set], "domain")
                inc = _get(sets[entry_set], "include")
                first = inc[0] if isinstance(inc, list) and inc else None
                is_drug = domain == "drug" or (domain is None and isinstance(first, str) and first.split(":")[0] in ("RxNorm", "ATC"))
                if domain is not None and not is_drug:
                    problems.append(((*base, "route"), "a route filter needs a drug entry concept set"))
        for i, name in _items(_get(cohort, "washout_concept_sets")):
            ref_set(name, (*base, "washout_concept_sets", i))
        min_exp = _get(cohort, "min_exposures")
        if min_exp is not None:
            problems += _window_problems(_get(min_exp, "window"), (*base, "min_exposures", "window"))
        age = _get(cohort, "age")
        lo, hi = _get(age, "min"), _get(age, "max")
        if isinstance(lo, int) and isinstance(hi, int) and hi < lo:
            problems.append(((*base, "age"), f"max ({hi}) is below min ({lo})"))
        edges[cname] = set()
        for kind in ("require", "exclude"):
            for i, crit in _items(_get(cohort, kind)):
                loc: Loc = (*base, kind, i)
                cs, co = _get(crit, "concept_set"), _get(crit, "cohort")
                if (cs is None) == (co is None):
                    problems.append((loc, "give exactly one of concept_set or cohort"))
                ref_set(cs, (*loc, "concept_set"))
                if isinstance(co, str):
                    if co == cname:
                        problems.append(((*loc, "cohort"), f"cohort {cname!r} refers to itself"))
                    elif co not in cohorts:
                        problems.append(((*loc, "cohort"), f"unknown cohort {co!r}"))
                    else:
                        edges[cname].add(co)
                problems += _window_problems(_get(crit, "window"), (*loc, "window"))
    problems += _cycle_problems(edges)

    for oname, outcome in outcomes.items():
        cs = _get(outcome, "concept_set")
        ref_set(cs, ("outcomes", oname, "concept_set"))
        if isinstance(cs, str) and cs in sets and not _has_codes(sets[cs]):
            problems.append((("outcomes", oname), f"outcome has no codes (concept set {cs!r} is empty)"))

    covariates = _get(data, "covariates")
    for i, name in _items(_get(covariates, "concept_sets")):
        ref_set(name, ("covariates", "concept_sets", i))
    if covariates is not None:
        problems += _window_problems(_get(covariates, "window"), ("covariates", "window"))
        problems += _default_set_problems(covariates, ref_set)

    problems += _adjustment_problems(_get(data, "analysis"), covariates)

    tar = _get(data, "time_at_risk")
    if tar is not None:
        so, eo = _get(tar, "start_offset"), _get(tar, "end_offset")
        same = {"cohort_start": "index"}
        sa, ea = _get(tar, "start_anchor") or "index", _get(tar, "end_anchor") or "index"
        sa, ea = same.get(sa, sa), same.get(ea, ea)
        if isinstance(so, int) and isinstance(eo, int) and sa == ea and eo < so:
            problems.append((("time_at_risk",), f"time at risk ends before it starts (start {so}, end {eo}, both on {sa})"))

    for name, comp in _mapping(_get(data, "comparisons")).items():
        base = ("comparisons", name)
        for role in ("target", "comparator"):
            co = _get(comp, role)
            if isinstance(co, str) and co not in cohorts:
                problems.append(((*base, role), f"unknown cohort {co!r}"))
        if _get(comp, "target") is not None and _get(comp, "target") == _get(comp, "comparator"):
            problems.append((base, "target and comparator are the same cohort"))
        for kind in ("outcomes", "negative_controls"):
            for i, o in _items(_get(comp, kind)):
                if isinstance(o, str) and o not in outcomes:
                    problems.append(((*base, kind, i), f"unknown outcome {o!r}"))
    return problems


def _default_set_problems(covariates: Any, ref_set: Any) -> list[tuple[Loc, str]]:
    default = _get(covariates, "default_set")
    if default is None or default is False:
        return []
    loc: Loc = ("covariates", "default_set")
    problems: list[tuple[Loc, str]] = []
    if default is not True:
        for i, name in _items(_get(default, "excluded_concept_sets")):
            ref_set(name, (*loc, "excluded_concept_sets", i))
        long, short, end = (_get(default, k) for k in ("long_term_start_days", "short_term_start_days", "end_days"))
        long = -365 if long is None else long
        short = -30 if short is None else short
        end = 0 if end is None else end
        if all(isinstance(v, int) for v in (long, short, end)) and not long <= short <= end:
            problems.append((loc, f"windows must nest: long_term_start_days ({long}) <= short_term_start_days "
                                  f"({short}) <= end_days ({end})"))
    if _get(covariates, "all_conditions") or _get(covariates, "all_drugs"):
        problems.append((loc, "the default set already holds every condition and drug ingredient: "
                              "drop all_conditions / all_drugs"))
    return problems


#: CovariateSpec fields that select covariates, with their defaults
_COVARIATE_SOURCES = {"demographics": True, "concept_sets": [], "all_conditions": False, "all_drugs": False,
                      "default_set": None}


def _selects_covariates(covariates: Any) -> bool:
    if covariates is None:
        return bool(_COVARIATE_SOURCES["demographics"])
    default_set = _get(covariates, "default_set")
    if default_set is not None and default_set is not False:
        return True
    values = [_get(covariates, key) for key in _COVARIATE_SOURCES]
    return any(bool(default if value is None else value) for value, default in zip(values, _COVARIATE_SOURCES.values()))


def _adjustment_problems(analysis: Any, covariates: Any) -> list[tuple[Loc, str]]:
    """Adjustments on a propensity score need some covariate (an older single ``matching`` block
    or no ``analysis`` at all means one matching adjustment)."""
    if _selects_covariates(covariates):
        return []
    adjustments = _get(analysis, "adjustments")
    if adjustments is None:
        return [(("analysis",), "matching needs a propensity score, but the spec's covariates select none "
                 "(add covariates, or list only a crude adjustment)")]
    return [(("analysis", "adjustments", i), "needs a propensity score, but the spec's covariates select none")
            for i, adj in _items(adjustments) if _get(adj, "kind") in ("matching", "stratification", "iptw")]


def _cycle_problems(edges: dict[str, set[str]]) -> list[tuple[Loc, str]]:
    """Cohorts that reach themselves through other cohorts (self-references are reported apart)."""
    out: list[tuple[Loc, str]] = []
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start and len(path) > 1:
                    out.append((("cohorts", start), "cohorts refer to each other in a cycle: " + " -> ".join([*path, start])))
                    stack = []
                    break
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    return out


def combine(errors: list[Any], cross: list[tuple[Loc, str]]) -> ValidationError:
    """One :class:`ValidationError` holding pydantic's field errors and the cross-field problems."""
    line_errors: list[InitErrorDetails] = []
    for e in errors:
        line_errors.append({"type": PydanticCustomError(e["type"], e["msg"]), "loc": e["loc"], "input": e.get("input")})
    for loc, msg in cross:
        line_errors.append({"type": PydanticCustomError("cross_field", msg), "loc": loc, "input": None})
    return ValidationError.from_exception_data("StudySpec", line_errors)
