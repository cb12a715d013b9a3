"""Resolve concept sets into the concept ids of the CDM at hand, route by route.

Each entry of a concept set is resolved by every route the CDM's vocabulary allows (see
:mod:`follicle.vocab.source`), and each route's findings are kept, so that a report can say how a
set was resolved and how many concepts (and, with the events, persons) each route found:

* RxNorm, ATC, LOINC and OMOP entries: the concept itself (the CDM's ``concept``, else the bundled
  subset), then its descendants: ``concept_ancestor``, or without it the bundled ancestors, a walk
  of ``concept_relationship``, RxNorm drug names containing the ingredient, ATC codes below the
  class; ``drug_strength`` whenever the CDM has it. Matched on ``<domain>_concept_id``.
* ICD-10-CM entries: source values (``L63`` covers ``L63.0``...), ICD10CM source concepts, and the
  standard concepts those map to (``Maps to``). The mapped concepts are matched only on rows whose
  source value is not an ICD-10-CM code (EHR extracts coded in SNOMED, as Synthea writes), so
  ICD-coded rows are judged by their own code.

Codes that cannot be found become warnings, never errors. Only concept ids (small) leave the
database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from follicle.vocab.conceptset import ConceptEntry, ConceptSet, expand_icd10_range, normalise_icd10
from follicle.vocab.source import (
    CODE,
    DRUG_NAME,
    MAPPED,
    ROUTES,
    SOURCE_CONCEPT,
    SOURCE_VALUE,
    VocabularySource,
    table_or_none,
)

#: a normalised source value (upper case, no dot) that is an ICD-10-CM code
ICD10CM_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")


@dataclass(frozen=True)
class SourcePattern:
    """A source code matched on ``*_source_value`` (normalised), as a prefix or exactly."""

    code: str
    prefix: bool


@dataclass(frozen=True)
class Route:
    """What one route found for one entry of a concept set.

    Attributes
    ----------
    entry : the entry, as written in shorthand (``RxNorm:prednisone``).
    route : the route's name (one of :data:`follicle.vocab.source.ROUTES`).
    concept_ids : concept ids matched on ``<domain>_concept_id`` (for the ``mapped`` route only on
        rows without an ICD-10-CM source value).
    source_concept_ids : ids matched on ``<domain>_source_concept_id``.
    source_patterns : codes matched on ``<domain>_source_value``.
    excluded : whether the entry is one of the set's exclusions.
    """

    entry: str
    route: str
    concept_ids: frozenset[int] = frozenset()
    source_concept_ids: frozenset[int] = frozenset()
    source_patterns: tuple[SourcePattern, ...] = ()
    excluded: bool = False

    @property
    def n_concepts(self) -> int:
        """Concepts (or source codes) the route found."""
        return len(self.concept_ids) + len(self.source_concept_ids) + len(self.source_patterns)


@dataclass
class ResolvedConceptSet:
    """A concept set as concept ids and source-code patterns of one CDM.

    Attributes
    ----------
    concept_ids : standard concept ids, matched on ``<domain>_concept_id``.
    source_concept_ids : source concept ids, matched on ``<domain>_source_concept_id``.
    source_patterns : ICD-10-CM / LOINC codes matched on ``<domain>_source_value``.
    mapped_concept_ids : standard concepts that the set's ICD-10-CM codes map to, matched on
        ``<domain>_concept_id`` of rows whose source value is not an ICD-10-CM code.
    excluded_* : the same for the set's ``exclude`` entries (removed from matches).
    routes : what each route found, entry by entry (see :class:`Route`).
    hierarchy : how descendants were found: ``"concept_ancestor"`` (the CDM's), ``"fallback"``
        (other routes), or None when no entry asks for descendants.
    drug_names : whether RxNorm drug names can decide membership (the set holds ingredients or ATC
        classes with their descendants), used to judge which events cannot be classified.
    warnings : what could not be resolved, or was resolved by a fallback.
    """

    name: str
    domain: str | None
    concept_ids: frozenset[int] = frozenset()
    source_concept_ids: frozenset[int] = frozenset()
    source_patterns: tuple[SourcePattern, ...] = ()
    mapped_concept_ids: frozenset[int] = frozenset()
    excluded_concept_ids: frozenset[int] = frozenset()
    excluded_source_concept_ids: frozenset[int] = frozenset()
    excluded_source_patterns: tuple[SourcePattern, ...] = ()
    excluded_mapped_concept_ids: frozenset[int] = frozenset()
    routes: tuple[Route, ...] = ()
    hierarchy: str | None = None
    drug_names: bool = False
    icd10cm: bool = False
    standard: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.concept_ids or self.source_concept_ids or self.source_patterns or self.mapped_concept_ids)

    def summary(self) -> dict[str, Any]:
        """Sizes and routes, for CLI output and reports."""
        return {
            "name": self.name,
            "domain": self.domain,
            "concepts": len(self.concept_ids),
            "source_concepts": len(self.source_concept_ids),
            "mapped_concepts": len(self.mapped_concept_ids),
            "source_codes": [p.code + ("*" if p.prefix else "") for p in self.source_patterns],
            "hierarchy": self.hierarchy,
            "routes": [{"entry": r.entry, "route": r.route, "excluded": r.excluded, "concepts": r.n_concepts}
                       for r in self.routes],
            "warnings": list(self.warnings),
        }


def is_icd10cm(value: str | None) -> bool:
    """Whether a source value is written as an ICD-10-CM code (``L63.0``, ``l630``)."""
    return value is not None and bool(ICD10CM_CODE.match(normalise_icd10(value)))


def _resolve_entry(entry: ConceptEntry, vocab: VocabularySource) -> tuple[list[Route], list[str]]:
    """The routes of one entry and notes on what could not be resolved."""
    label = entry.label()
    code = entry.code.strip()
    if entry.vocabulary == "ICD10CM":
        codes = [normalise_icd10(c) for c in expand_icd10_range(code)]
        patterns = tuple(SourcePattern(c, entry.descendants) for c in codes)
        source = {cid for cid, norm in vocab.icd10cm_concepts(sorted({c[:3] for c in codes}))
                  if any(norm.startswith(c) if entry.descendants else norm == c for c in codes)}
        routes = [Route(label, SOURCE_VALUE, source_patterns=patterns),
                  Route(label, SOURCE_CONCEPT, source_concept_ids=frozenset(source))]
        if mapped := vocab.maps_to(source):
            routes.append(Route(label, MAPPED, concept_ids=frozenset(mapped)))
        return routes, []
    routes: list[Route] = []
    notes: list[str] = []
    if entry.vocabulary == "OMOP":
        found, where = {int(code)}, CODE
    else:
        kind, key = _kind_key(entry)
        found, where = vocab.find(kind, key), vocab.found_in(kind, key)
    patterns = (SourcePattern(code, False),) if entry.vocabulary == "LOINC" else ()
    if not found:
        if entry.vocabulary != "LOINC":
            notes.append(f"{label} not found in the vocabulary; it matches nothing")
        return ([Route(label, SOURCE_VALUE, source_patterns=patterns)] if patterns else []), notes
    routes.append(Route(label, where or CODE, concept_ids=frozenset(found), source_patterns=patterns))
    if entry.descendants:
        for route, ids in vocab.descendant_routes(found).items():  # what each route adds below the entry
            routes.append(Route(label, route, concept_ids=frozenset(ids - found)))
        _, note = vocab.descendants(found)
        if note:
            notes.append(f"{label}: {note}")
    return routes, notes


def _kind_key(entry: ConceptEntry) -> tuple[str, str]:
    code = entry.code.strip()
    if entry.vocabulary == "RxNorm":
        return ("rxcode", code) if code.isdigit() else ("rxname", code.lower())
    return ("atc", code.upper()) if entry.vocabulary == "ATC" else ("loinc", code)


def prefetch_concept_sets(concept_sets: dict[str, ConceptSet], vocab: VocabularySource) -> None:
    """Batch the vocabulary look-ups of many concept sets: one query per code kind, one for the
    ICD-10-CM categories, one for what their concepts map to, one for all descendants (instead of
    several per code or per set)."""
    entries = [e for cs in concept_sets.values() for e in (*cs.include, *cs.exclude)]
    by_kind: dict[str, list[str]] = {}
    for e in entries:
        if e.vocabulary not in ("ICD10CM", "OMOP"):
            kind, key = _kind_key(e)
            by_kind.setdefault(kind, []).append(key)
    for kind, keys in by_kind.items():
        vocab.prefetch(kind, keys)
    cats = {normalise_icd10(c)[:3] for e in entries if e.vocabulary == "ICD10CM" for c in expand_icd10_range(e.code)}
    if cats:
        # every ICD10CM concept of these categories, and what each maps to: two queries in all
        vocab.prefetch_maps_to({cid for cid, _ in vocab.icd10cm_concepts(sorted(cats))})
    roots: set[int] = set()
    for e in entries:
        if e.descendants and e.vocabulary != "ICD10CM":
            roots |= {int(e.code)} if e.vocabulary == "OMOP" else vocab.find(*_kind_key(e))
    vocab.prefetch_descendants(roots)
    if not vocab.has_ancestor and roots:
        info = vocab.concept_info(roots)
        vocab.prefetch_drug_names({str(r["concept_name"]).lower() for r in info.values()
                                   if r["concept_class_id"] == "Ingredient"})


def resolve_concept_set(name: str, concept_set: ConceptSet, vocab: VocabularySource) -> ResolvedConceptSet:
    """Resolve one concept set; codes that cannot be found become warnings, not errors.

    Parameters
    ----------
    name : str
        The set's name (used in messages).
    concept_set : ConceptSet
        The set as the spec writes it.
    vocab : VocabularySource
        The vocabulary of the CDM (with the bundled subset as fallback).

    Returns
    -------
    ResolvedConceptSet
        Concept ids by column matched, every route's findings and warnings.
    """
    routes: list[Route] = []
    notes: list[str] = []
    for excluded, entries in ((False, concept_set.include), (True, concept_set.exclude)):
        for entry in entries:
            found, entry_notes = _resolve_entry(entry, vocab)
            routes += [replace(r, excluded=excluded) for r in found]
            notes += entry_notes

    def union(excluded: bool, attr: str, mapped: bool) -> set[Any]:
        return {x for r in routes if r.excluded == excluded and (r.route == MAPPED) == mapped for x in getattr(r, attr)}

    def patterns(excluded: bool) -> tuple[SourcePattern, ...]:
        return tuple(dict.fromkeys(p for r in routes if r.excluded == excluded for p in r.source_patterns))

    standard_entries = [e for e in concept_set.include if e.vocabulary != "ICD10CM"]
    with_descendants = [e for e in standard_entries if e.descendants]
    resolved = ResolvedConceptSet(
        name=name,
        domain=concept_set.domain,
        concept_ids=frozenset(union(False, "concept_ids", False) - union(True, "concept_ids", False)),
        source_concept_ids=frozenset(union(False, "source_concept_ids", False) - union(True, "source_concept_ids", False)),
        source_patterns=patterns(False),
        mapped_concept_ids=frozenset(union(False, "concept_ids", True) - union(True, "concept_ids", True)),
        excluded_concept_ids=frozenset(union(True, "concept_ids", False)),
        excluded_source_concept_ids=frozenset(union(True, "source_concept_ids", False)),
        excluded_source_patterns=patterns(True),
        excluded_mapped_concept_ids=frozenset(union(True, "concept_ids", True)),
        routes=tuple(sorted(routes, key=lambda r: (r.excluded, ROUTES.index(r.route)))),
        hierarchy=None if not with_descendants else ("concept_ancestor" if vocab.has_ancestor else "fallback"),
        drug_names=any(r.route == DRUG_NAME for r in routes) or (
            bool(with_descendants) and all(e.vocabulary in ("RxNorm", "ATC") for e in with_descendants)),
        icd10cm=any(e.vocabulary == "ICD10CM" for e in concept_set.include),
        standard=bool(standard_entries),
        warnings=[f"concept set {name!r}: {n}" for n in dict.fromkeys(notes)],
    )
    if resolved.is_empty:
        resolved.warnings.append(f"concept set {name!r} resolved to no concepts in this CDM")
    return resolved


def resolve_concept_sets(
    concept_sets: dict[str, ConceptSet], con: Any, *, database: Any = None, bundled: dict[str, pd.DataFrame] | None = None
) -> dict[str, ResolvedConceptSet]:
    """Resolve every concept set of a study against the CDM behind *con*.

    Parameters
    ----------
    concept_sets : dict of str to ConceptSet
        The study's concept sets by name.
    con : Ibis backend
        The CDM (see :func:`follicle.cdm.connect.connect`).
    database : str, optional
        Schema of the CDM tables, if not the default.
    bundled : dict, optional
        Stand-in vocabulary tables (None: the bundled subset; ``{}``: none).

    Returns
    -------
    dict of str to ResolvedConceptSet
        Each set's concept ids, source codes, routes and warnings.

    Examples
    --------
    >>> import ibis
    >>> from follicle.vocab.conceptset import ConceptSet
    >>> sets = {"jaki": ConceptSet(include=["RxNorm:baricitinib"])}
    >>> r = resolve_concept_sets(sets, ibis.duckdb.connect())["jaki"]
    >>> sorted(r.concept_ids)[:2], r.domain
    ([1510627, 2000400200], 'drug')
    """
    vocab = VocabularySource(con, database=database, bundled=bundled)
    prefetch_concept_sets(concept_sets, vocab)
    return {name: resolve_concept_set(name, cs, vocab) for name, cs in concept_sets.items()}


__all__ = ["ICD10CM_CODE", "ResolvedConceptSet", "Route", "SourcePattern", "VocabularySource",
           "is_icd10cm", "prefetch_concept_sets", "resolve_concept_set", "resolve_concept_sets", "table_or_none"]
