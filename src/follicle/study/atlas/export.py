"""A cohort of a Follicle study written as a Circe definition that ATLAS imports.

An ATLAS cohort (``atlas:``) is written back as its definition. A Follicle cohort is translated:

- concept sets: the standard concept ids each set resolves to in the CDM at hand (descendants
  already taken, so each item is listed without ``includeDescendants``);
- entry: the first event of the entry set ever (``First`` on the criterion, so a first event
  outside an observation period or without enough prior observation drops the person, as in
  Follicle), with ``PriorDays`` = max(prior observation, washout);
- washout, minimum exposures (distinct days), required and excluded concept sets: inclusion
  rules with correlated criteria in the same windows, not restricted to the observation period
  (as Follicle counts them); age at index: a demographic criterion;
- end: for a drug entry, the continuous exposure (custom era with ``exposure_gap_days``); Circe
  ends a drug exposure without an end date at start + days supply (Follicle at its start).

What Circe cannot say is refused by its field: a route filter, membership of another cohort, and
concept sets matched on source codes that no source concept id covers (ICD-10-CM values).
"""

from __future__ import annotations

from typing import Any

from follicle.errors import SpecError
from follicle.study.spec import CohortSpec, StudySpec, Window
from follicle.vocab.resolve import ResolvedConceptSet, prefetch_concept_sets, resolve_concept_set
from follicle.vocab.source import VocabularySource

CIRCE_DOMAIN = {"condition": "ConditionOccurrence", "drug": "DrugExposure", "measurement": "Measurement",
                "procedure": "ProcedureOccurrence", "observation": "Observation"}


def _endpoint(days: int | None, lower: bool) -> dict[str, Any]:
    """A Circe window end for a Follicle day offset (None: unbounded)."""
    if days is None:
        return {"Coeff": -1 if lower else 1}
    return {"Days": abs(days), "Coeff": -1 if days < 0 else 1}


def _window(w: Window) -> dict[str, Any]:
    return {"Start": _endpoint(w.start, True), "End": _endpoint(w.end, False), "UseEventEnd": False}


def _criterion(domain: str, codeset: int, window: Window, occurrence: dict[str, Any]) -> dict[str, Any]:
    return {"Criteria": {CIRCE_DOMAIN[domain]: {"CodesetId": codeset}}, "StartWindow": _window(window),
            "IgnoreObservationPeriod": True, "Occurrence": occurrence}


def _rule(name: str, criteria: list[dict[str, Any]] | None = None, demographic: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "expression": {"Type": "ALL", "CriteriaList": criteria or [],
                                         "DemographicCriteriaList": demographic or [], "Groups": []}}


class _Sets:
    """Concept sets of the exported definition, numbered as they are first used."""

    def __init__(self, spec: StudySpec, resolved: dict[str, ResolvedConceptSet], cohort: str) -> None:
        self.spec, self.resolved, self.cohort = spec, resolved, cohort
        self.ids: dict[str, int] = {}
        self.problems: list[str] = []

    def __call__(self, name: str, field: str) -> tuple[str, int]:
        rs = self.resolved[name]
        if rs.source_patterns and not rs.source_concept_ids and not rs.concept_ids:
            self.problems.append(f"cohorts.{self.cohort}.{field}: concept set {name!r} is matched on source values "
                                 "only, which a Circe concept set cannot hold")
        elif rs.source_patterns or rs.source_concept_ids:
            self.problems.append(f"cohorts.{self.cohort}.{field}: concept set {name!r} also matches source codes "
                                 "(ICD-10-CM or source concept ids), which a Circe concept set of standard concepts "
                                 "would miss; export refused rather than changed")
        if rs.domain is None:
            self.problems.append(f"cohorts.{self.cohort}.{field}: concept set {name!r} has no domain")
        self.ids.setdefault(name, len(self.ids))
        return rs.domain or "condition", self.ids[name]

    def concept_sets(self) -> list[dict[str, Any]]:
        return [{"id": i, "name": name, "expression": {"items": [
            {"concept": {"CONCEPT_ID": c}, "isExcluded": False, "includeDescendants": False, "includeMapped": False}
            for c in sorted(self.resolved[name].concept_ids)]}} for name, i in self.ids.items()]


def cohort_to_circe(spec: StudySpec, cohort: str, con: Any, *, database: Any = None) -> dict[str, Any]:
    """The Circe JSON of *cohort* of *spec*, its concept sets resolved against the CDM behind *con*."""
    cs: CohortSpec = spec.cohorts[cohort]
    if cs.atlas is not None:
        return dict(cs.atlas.definition or {})
    assert cs.entry is not None
    vocab = VocabularySource(con, database=database)
    prefetch_concept_sets(spec.concept_sets, vocab)
    resolved = {n: resolve_concept_set(n, c, vocab) for n, c in spec.concept_sets.items()}
    sets = _Sets(spec, resolved, cohort)
    problems: list[str] = []
    if cs.route is not None:
        problems.append(f"cohorts.{cohort}.route: a route filter has no Circe equivalent that keeps Follicle's "
                        "first-exposure rule; export refused")
    domain, entry_id = sets(cs.entry.concept_set, "entry.concept_set")
    rules: list[dict[str, Any]] = []
    if cs.washout_days is not None:
        w = Window(start=-cs.washout_days, end=-1)
        for name in cs.washout_concept_sets or [cs.entry.concept_set]:
            d, i = sets(name, "washout_concept_sets")
            rules.append(_rule(f"no {name} in the {cs.washout_days} days before index",
                               [_criterion(d, i, w, {"Type": 0, "Count": 0})]))
    if cs.min_exposures is not None:
        me = cs.min_exposures
        rules.append(_rule(f">= {me.count} exposures (distinct days)", [_criterion(
            domain, entry_id, me.window, {"Type": 2, "Count": me.count, "IsDistinct": True, "CountColumn": "START_DATE"})]))
    for kind, crits in (("require", cs.require), ("exclude", cs.exclude)):
        for k, c in enumerate(crits):
            if c.cohort:
                problems.append(f"cohorts.{cohort}.{kind}[{k}].cohort: membership of another cohort has no Circe "
                                "equivalent here; export refused")
                continue
            d, i = sets(c.concept_set, f"{kind}[{k}].concept_set")  # type: ignore[arg-type]
            occ = {"Type": 2, "Count": 1} if kind == "require" else {"Type": 0, "Count": 0}
            rules.append(_rule(f"{'has' if kind == 'require' else 'no'} {c.concept_set}", [_criterion(d, i, c.window, occ)]))
    if cs.age is not None:
        lo, hi = cs.age.min, cs.age.max
        age = ({"Value": lo, "Op": "bt", "Extent": hi} if lo is not None and hi is not None
               else {"Value": lo, "Op": "gte"} if lo is not None else {"Value": hi, "Op": "lte"} if hi is not None else None)
        if age is not None:
            rules.append(_rule("age at index", demographic=[{"Age": age}]))
    problems += sets.problems
    if problems:
        raise SpecError(f"cohort {cohort!r} cannot be written as a Circe definition", problems=problems)
    out: dict[str, Any] = {
        "Title": cs.description or cohort,
        "ConceptSets": sets.concept_sets(),
        "PrimaryCriteria": {
            "CriteriaList": [{CIRCE_DOMAIN[domain]: {"CodesetId": entry_id, "First": True}}],
            "ObservationWindow": {"PriorDays": max(cs.prior_observation_days, cs.washout_days or 0), "PostDays": 0},
            "PrimaryCriteriaLimit": {"Type": "First"},
        },
        "QualifiedLimit": {"Type": "First"},
        "ExpressionLimit": {"Type": "First"},
        "InclusionRules": rules,
        "CensoringCriteria": [],
        "CollapseSettings": {"CollapseType": "ERA", "EraPad": 0},
        "CensorWindow": {},
    }
    if domain == "drug":
        out["EndStrategy"] = {"CustomEra": {"DrugCodesetId": entry_id, "GapDays": cs.exposure_gap_days, "Offset": 0}}
    return out
