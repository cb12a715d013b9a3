"""Cohort sizes and attrition for every cohort and comparison of a study, small cells suppressed.

This is what ``follicle cohorts`` prints: counts only (aggregate), never person rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from follicle.privacy import protect_chain, suppress_count
from follicle.study.collector import full_collections_deferred
from follicle.study.coverage import missed_warnings, suppressed_report
from follicle.study.session import StudySession, comparison_rows
from follicle.study.spec import StudySpec


@full_collections_deferred
def cohort_counts(spec: StudySpec, con: Any, *, database: Any = None) -> dict[str, Any]:
    """Attrition of every cohort and sizes of every comparison, computed in the database.

    Parameters
    ----------
    spec : StudySpec
        The study.
    con : ibis.backends.BaseBackend
        The CDM.
    database : str, optional
        Schema of the CDM tables, if not the default.

    Returns
    -------
    dict

    Returns ``{"attrition": DataFrame, "comparisons": DataFrame, "concept_sets": ConceptSetReport,
    "warnings": list[str]}`` with raw (unsuppressed) counts (the warnings are already suppressed);
    apply :func:`suppressed` before anything leaves the machine.
    """
    with StudySession(spec, con, database=database) as session:
        report = session.concept_set_report()
        attrition = pd.concat(session.attritions(list(spec.cohorts)), ignore_index=True)
        rows = []
        for name in spec.comparisons:
            _, steps, counts = comparison_rows(session, name)  # the flags alone: one row per person, no analysis columns
            rows += [{"comparison": name, "step": s["step"], "description": s["description"], "persons": n}
                     for s, n in zip(steps, counts, strict=True)]
        empty = [m for name in spec.cohorts if (m := empty_cohort_message(name, attrition, spec.min_cell_count))]
        warnings = report.notes + missed_warnings(report, spec.min_cell_count) + empty
        return {"attrition": attrition, "comparisons": pd.DataFrame(rows), "concept_sets": report, "warnings": warnings}


def emptied_at(attrition: pd.DataFrame, cohort: str) -> tuple[str, str, int] | None:
    """``(step, description, persons before it)`` of the first step of *cohort* in *attrition*
    that leaves nobody; None when people remain after the last step."""
    rows = attrition[attrition["cohort"] == cohort].sort_values("step_index")
    before = 0
    for r in rows.itertuples():
        if int(r.persons) == 0:
            return str(r.step), str(r.description), before
        before = int(r.persons)
    return None


def empty_cohort_message(cohort: str, attrition: pd.DataFrame, min_cell_count: int, *, role: str | None = None) -> str | None:
    """One message naming an empty cohort and the step where it emptied (counts suppressed), or None."""
    hit = emptied_at(attrition, cohort)
    if hit is None:
        return None
    step, desc, before = hit
    name = f"cohort {cohort!r}" + (f" ({role})" if role else "")
    if step == "entry":
        return f"{name} is empty: nobody has a {desc} (step 'entry')"
    n = suppress_count(before, min_cell_count)
    return f"{name} is empty: {n:,} persons before step {step!r} ({desc}), none after it" if isinstance(n, int) else \
        f"{name} is empty: {n} persons before step {step!r} ({desc}), none after it"


def suppressed(counts: dict[str, Any], min_cell_count: int) -> dict[str, Any]:
    """The result of :func:`cohort_counts` as plain records with small counts written ``"<n"``.

    Attrition steps of a cohort nest, so each cohort's steps are protected as a chain
    (:func:`follicle.privacy.protect_chain`): a step whose drop from the last shown step is 1 to
    min_cell_count - 1 is withheld (None), so no difference of two shown steps is a small count.
    """
    out: dict[str, Any] = {"min_cell_count": min_cell_count, "warnings": list(counts["warnings"])}
    if "concept_sets" in counts:
        out["concept_sets"] = suppressed_report(counts["concept_sets"], min_cell_count)
    for key in ("attrition", "comparisons"):
        records = counts[key].to_dict(orient="records")
        if key == "attrition" and records and "cohort" in records[0]:
            for cohort in dict.fromkeys(r["cohort"] for r in records):
                rows = [r for r in records if r["cohort"] == cohort]
                for r, v in zip(rows, protect_chain([int(r["persons"]) for r in rows], min_cell_count)):
                    r["persons"] = v
        else:
            for r in records:
                r["persons"] = suppress_count(int(r["persons"]), min_cell_count)
        out[key] = records
    return out


def cohort_closure(spec: StudySpec, name: str) -> list[str]:
    """*name* and every cohort it refers to (through ``cohort:`` criteria), in a stable order."""
    seen: list[str] = []
    todo = [name]
    while todo:
        n = todo.pop()
        if n in seen or n not in spec.cohorts:
            continue
        seen.append(n)
        c = spec.cohorts[n]
        todo += [cr.cohort for cr in c.require + c.exclude if cr.cohort]
    return seen


@full_collections_deferred
def cohort_attrition(spec: StudySpec, con: Any, name: str, *, database: Any = None) -> dict[str, Any]:
    """Attrition of one cohort, building only it (and the cohorts it refers to) and their concept sets.

    Returns ``{"attrition": DataFrame, "warnings": list[str]}`` with raw counts (suppress before
    showing). Used for live attrition while a cohort is edited.
    """
    names = cohort_closure(spec, name)
    sets: set[str] = set()
    for n in names:
        c = spec.cohorts[n]
        sets |= {*([c.entry.concept_set] if c.entry else []), *c.washout_concept_sets}
        sets |= {cr.concept_set for cr in c.require + c.exclude if cr.concept_set}
        if c.route is not None and c.route.exclude_concept_set:
            sets.add(c.route.exclude_concept_set)
    sub = spec.model_copy(update={
        "concept_sets": {k: v for k, v in spec.concept_sets.items() if k in sets},
        "cohorts": {k: spec.cohorts[k] for k in names}, "outcomes": {}, "comparisons": {},
        "covariates": spec.covariates.model_copy(update={"concept_sets": []}),
    })
    with StudySession(sub, con, database=database) as session:
        return {"attrition": session.attrition(name), "warnings": session.warnings}
