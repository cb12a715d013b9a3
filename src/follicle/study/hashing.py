"""Stable content hashes of a study spec and of the parts that produce each result.

A hash is the SHA-256 of canonical JSON (sorted keys, no whitespace, defaults filled in), so two
specs that mean the same give the same hash whatever their YAML layout. Per-part hashes let a
runner cache by what produced a result: changing one outcome changes only that outcome's hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from follicle.study.spec import StudySpec


def canonical_json(obj: Any) -> str:
    """Canonical JSON of a model or plain data (sorted keys, compact separators)."""
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def content_hash(obj: Any) -> str:
    """SHA-256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def spec_hash(spec: StudySpec) -> str:
    """The hash of the whole spec."""
    return content_hash(spec)


def _cohort_closure(spec: StudySpec, names: list[str]) -> list[str]:
    out: list[str] = []
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.append(name)
        todo += [c.cohort for c in spec.cohorts[name].require + spec.cohorts[name].exclude if c.cohort]
    return sorted(out)


def _cohort_sets(spec: StudySpec, cohorts: list[str]) -> set[str]:
    sets: set[str] = set()
    for name in cohorts:
        c = spec.cohorts[name]
        if c.entry is not None:
            sets.add(c.entry.concept_set)
        sets.update(c.washout_concept_sets)
        sets.update(x.concept_set for x in c.require + c.exclude if x.concept_set)
        if c.route and c.route.exclude_concept_set:
            sets.add(c.route.exclude_concept_set)
    return sets


def part_hashes(spec: StudySpec, comparison: str) -> dict[str, str]:
    """Hashes of what produces each result of *comparison*.

    Keys: ``population`` (cohorts, their concept sets, time at risk, covariates, overlap rule),
    ``propensity`` (population + propensity settings), ``adjustment:<name>`` for every adjustment
    (propensity + its settings + the balance threshold), and ``outcome:<name>`` for every outcome
    and negative control (population + that outcome, its concept set, the outcome model settings
    and ``min_cell_count``). An estimate depends on one adjustment and one outcome.
    """
    comp = spec.comparisons[comparison]
    cohorts = _cohort_closure(spec, [comp.target, comp.comparator])
    sets = _cohort_sets(spec, cohorts) | set(spec.covariates.concept_sets)
    if spec.covariates.default_set is not None:
        sets |= set(spec.covariates.default_set.excluded_concept_sets)
    population = content_hash(
        {
            "target": comp.target,
            "comparator": comp.comparator,
            "overlap": comp.overlap,
            "cohorts": {n: spec.cohorts[n].model_dump(mode="json") for n in cohorts},
            "concept_sets": {n: spec.concept_sets[n].model_dump(mode="json") for n in sorted(sets)},
            "time_at_risk": spec.time_at_risk.model_dump(mode="json"),
            "covariates": spec.covariates.model_dump(mode="json"),
        }
    )
    propensity = content_hash({"population": population, "propensity": spec.analysis.propensity.model_dump(mode="json")})
    out = {"population": population, "propensity": propensity}
    for adj in spec.analysis.adjustments:
        out[f"adjustment:{adj.name}"] = content_hash(
            {
                "propensity": propensity,
                "adjustment": adj.model_dump(mode="json"),
                "balance_threshold": spec.analysis.balance_threshold,
                "outcome_model": spec.analysis.outcome_model.model_dump(mode="json"),
            }
        )
    for name in dict.fromkeys(comp.outcomes + comp.negative_controls):
        outcome = spec.outcomes[name]
        out[f"outcome:{name}"] = content_hash(
            {
                "population": population,
                "name": name,
                "negative_control": name in comp.negative_controls,
                "outcome": outcome.model_dump(mode="json"),
                "concept_set": spec.concept_sets[outcome.concept_set].model_dump(mode="json"),
                "outcome_model": spec.analysis.outcome_model.model_dump(mode="json"),
                "min_cell_count": spec.min_cell_count,
            }
        )
    return out
