"""Resolve concept sets into the concept ids of the CDM at hand.

The CDM's own vocabulary tables are used when present and non-empty; otherwise (or when a code
is missing from them) the bundled vocabulary subset of :mod:`follicle.vocab.bundled`. Descendants
come from ``concept_ancestor``; when it is empty (Synthea27Nj), from a breadth-first walk of
``concept_relationship`` plus any bundled ancestor rows; when neither exists, the concept alone
is used and a warning says so. Only concept ids (small) leave the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pandas as pd

from follicle.vocab.closure import DOWNWARD_RELATIONSHIPS, descendant_closure
from follicle.vocab.conceptset import (
    ConceptEntry,
    ConceptSet,
    expand_icd10_range,
    normalise_icd10,
)

VOCAB_TABLES = ("concept", "concept_ancestor", "concept_relationship")


@dataclass(frozen=True)
class SourcePattern:
    """A source code matched on ``*_source_value`` (normalised), as a prefix or exactly."""

    code: str
    prefix: bool


@dataclass
class ResolvedConceptSet:
    """A concept set as concept ids and source-code patterns of one CDM.

    Attributes
    ----------
    concept_ids : standard concept ids, matched on ``<domain>_concept_id``.
    source_concept_ids : source concept ids, matched on ``<domain>_source_concept_id``.
    source_patterns : ICD-10-CM / LOINC codes matched on ``<domain>_source_value``.
    excluded_* : the same for the set's ``exclude`` entries (removed from matches).
    warnings : what could not be resolved, or was resolved by a fallback.
    """

    name: str
    domain: str | None
    concept_ids: frozenset[int] = frozenset()
    source_concept_ids: frozenset[int] = frozenset()
    source_patterns: tuple[SourcePattern, ...] = ()
    excluded_concept_ids: frozenset[int] = frozenset()
    excluded_source_concept_ids: frozenset[int] = frozenset()
    excluded_source_patterns: tuple[SourcePattern, ...] = ()
    warnings: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.concept_ids or self.source_concept_ids or self.source_patterns)

    def summary(self) -> dict[str, Any]:
        """Sizes, for CLI output and reports."""
        return {
            "name": self.name,
            "domain": self.domain,
            "concepts": len(self.concept_ids),
            "source_concepts": len(self.source_concept_ids),
            "source_codes": [p.code + ("*" if p.prefix else "") for p in self.source_patterns],
            "warnings": list(self.warnings),
        }


def table_or_none(con: Any, name: str, database: Any = None) -> ir.Table | None:
    """The table *name* of *con*, or None when it does not exist.

    (Asked by opening the table rather than through ``list_tables``, which Ibis 12 cannot run
    on DuckDB 2.0.)
    """
    try:
        return con.table(name, database=database)
    except Exception:  # noqa: BLE001 - each backend raises its own not-found error
        return None


def _load_bundled() -> dict[str, Any]:
    """The bundled vocabulary subset (:func:`follicle.vocab.bundled.vocabulary_tables`), as Arrow
    tables (an engine reads them in place; a pandas copy would be converted back)."""
    from follicle.vocab import bundled

    return {k.lower(): v for k, v in bundled.vocabulary_tables().items()}


class VocabularySource:
    """Vocabulary tables of a CDM (Ibis connection), falling back table by table to the bundled subset.

    Parameters
    ----------
    con : Ibis backend holding the CDM.
    database : schema (or ``(catalog, schema)``) of the CDM tables; None for the default.
    bundled : tables keyed by name; None loads the bundled subset (:func:`follicle.vocab.bundled.vocabulary_tables`).
    """

    def __init__(self, con: Any, *, database: Any = None, bundled: dict[str, pd.DataFrame] | None = None) -> None:
        self.con = con
        self.database = database
        self._bundled_frames = None if bundled is None else {k.lower(): v for k, v in bundled.items()}
        self._cdm: dict[str, ir.Table | None] = {}
        self._bundled: dict[str, ir.Table | None] = {}
        self._codes: dict[tuple[str, str], set[int]] = {}
        self._icd: dict[str, list[tuple[int, str]]] = {}
        self._desc: dict[int, set[int]] = {}
        self.notes: list[str] = []

    def cdm_table(self, name: str) -> ir.Table | None:
        """The CDM's table *name* if it exists and has rows, else None."""
        if name not in self._cdm:
            table = table_or_none(self.con, name, self.database)
            if table is not None and int(self.con.execute(table.limit(1).count())) == 0:
                table = None
            self._cdm[name] = table
        return self._cdm[name]

    def bundled_table(self, name: str) -> ir.Table | None:
        """The bundled subset's table *name* as an in-memory Ibis table, or None."""
        if name not in self._bundled:
            if self._bundled_frames is None:
                self._bundled_frames = _load_bundled()
            frame = self._bundled_frames.get(name)
            self._bundled[name] = ibis.memtable(frame) if frame is not None and len(frame) else None
        return self._bundled[name]

    def sources(self, name: str) -> list[ir.Table]:
        """The CDM table then the bundled one, whichever exist."""
        return [t for t in (self.cdm_table(name), self.bundled_table(name)) if t is not None]

    def _ids(self, expr: ir.Table, column: str) -> set[int]:
        frame = self.con.execute(expr.select(expr[column]).distinct())
        return {int(v) for v in frame[column].dropna()}

    _KINDS: ClassVar[dict[str, tuple[str, str | None, str]]] = {  # kind -> (vocabulary_id, concept_class_id or None, column matched, key transform)
        "rxcode": ("RxNorm", None, "concept_code"),
        "rxname": ("RxNorm", "Ingredient", "concept_name"),
        "atc": ("ATC", None, "concept_code"),
        "loinc": ("LOINC", None, "concept_code"),
    }

    def prefetch(self, kind: str, keys: list[str]) -> None:
        """Look up many codes (or ingredient names) of one kind at once: one query per source."""
        vocabulary, klass, column = self._KINDS[kind]
        todo = sorted({k for k in keys if (kind, k) not in self._codes})
        for concept in self.sources("concept"):
            if not todo:
                break
            col = concept[column].lower() if kind == "rxname" else concept[column]
            pred = (concept.vocabulary_id == vocabulary) & col.isin(todo)
            if klass:
                pred = pred & (concept.concept_class_id == klass)
            frame = self.con.execute(concept.filter(pred).select(key=col, concept_id=concept.concept_id).distinct())
            for key, cid in zip(frame["key"], frame["concept_id"]):
                self._codes.setdefault((kind, str(key)), set()).add(int(cid))
            todo = [k for k in todo if (kind, k) not in self._codes]
        for k in todo:
            self._codes[(kind, k)] = set()

    def find(self, kind: str, key: str) -> set[int]:
        """Concept ids of one code or ingredient name (cached; see :meth:`prefetch`)."""
        if (kind, key) not in self._codes:
            self.prefetch(kind, [key])
        return set(self._codes[(kind, key)])

    def icd10cm_concepts(self, categories: list[str]) -> list[tuple[int, str]]:
        """(concept_id, normalised code) of ICD10CM concepts in the given 3-character categories."""
        todo = sorted({c for c in categories if c not in self._icd})
        for concept in self.sources("concept"):
            if not todo:
                break
            norm = concept.concept_code.upper().replace(".", "")
            pred = (concept.vocabulary_id == "ICD10CM") & norm.substr(0, 3).isin(todo)
            frame = self.con.execute(concept.filter(pred).select(concept_id=concept.concept_id, code=norm).distinct())
            for cid, code in zip(frame["concept_id"], frame["code"]):
                self._icd.setdefault(str(code)[:3], []).append((int(cid), str(code)))
            todo = [c for c in todo if c not in self._icd]
        for c in todo:
            self._icd[c] = []
        return [row for c in categories for row in self._icd[c]]

    def prefetch_descendants(self, ids: set[int]) -> None:
        """Descendants of many concepts through the CDM's concept_ancestor, in one query."""
        ancestor = self.cdm_table("concept_ancestor")
        todo = sorted(i for i in ids if i not in self._desc)
        if ancestor is None or not todo:
            return
        expr = ancestor.filter(ancestor.ancestor_concept_id.isin(todo)).select(
            a=ancestor.ancestor_concept_id, d=ancestor.descendant_concept_id
        )
        frame = self.con.execute(expr.distinct())
        for i in todo:
            self._desc[i] = {i}
        for a, d in zip(frame["a"], frame["d"]):
            self._desc[int(a)].add(int(d))

    def descendants(self, ids: set[int]) -> tuple[set[int], str | None]:
        """*ids* with all their descendants, and a note when a fallback was used."""
        if not ids:
            return set(), None
        ancestor = self.cdm_table("concept_ancestor")
        if ancestor is not None:
            self.prefetch_descendants(ids)
            return set().union(*(self._desc[i] for i in ids)), None
        result = set(ids)
        used = []
        bundled_anc = self.bundled_table("concept_ancestor")
        if bundled_anc is not None:
            result |= self._ids(
                bundled_anc.filter(bundled_anc.ancestor_concept_id.isin(sorted(ids))), "descendant_concept_id"
            )
            used.append("the bundled concept_ancestor")
        rel = self.cdm_table("concept_relationship")
        rel_name = "the CDM's concept_relationship"
        if rel is None:
            rel, rel_name = self.bundled_table("concept_relationship"), "the bundled concept_relationship"
        if rel is not None:
            result |= set(descendant_closure(result, self._children_of(rel)))
            used.append(rel_name)
        if not used:
            return result, "concept_ancestor is empty and no relationships are available: concepts used without descendants"
        return result, "the CDM's concept_ancestor is empty or missing: descendants taken from " + " and ".join(used)

    def _children_of(self, rel: ir.Table) -> Any:
        def children_of(parents: frozenset[int]) -> list[tuple[int, int]]:
            expr = rel.filter(
                rel.concept_id_1.isin(sorted(parents)), rel.relationship_id.isin(list(DOWNWARD_RELATIONSHIPS))
            ).select("concept_id_1", "concept_id_2")
            frame = self.con.execute(expr.distinct())
            return list(zip(frame["concept_id_1"].astype(int), frame["concept_id_2"].astype(int)))

        return children_of


def _resolve_entry(entry: ConceptEntry, vocab: VocabularySource) -> tuple[set[int], set[int], list[SourcePattern], list[str]]:
    """Standard ids, source ids, source patterns and notes for one entry."""
    notes: list[str] = []
    standard: set[int] = set()
    source: set[int] = set()
    patterns: list[SourcePattern] = []
    code = entry.code.strip()
    if entry.vocabulary == "ICD10CM":
        codes = [normalise_icd10(c) for c in expand_icd10_range(code)]
        patterns = [SourcePattern(c, entry.descendants) for c in codes]
        for cid, norm in vocab.icd10cm_concepts(sorted({c[:3] for c in codes})):
            if any(norm.startswith(c) if entry.descendants else norm == c for c in codes):
                source.add(cid)
        return standard, source, patterns, notes
    if entry.vocabulary == "OMOP":
        found = {int(code)}
    else:
        found = vocab.find(*_kind_key(entry))
        if entry.vocabulary == "LOINC":
            patterns = [SourcePattern(code, False)]
    if not found and entry.vocabulary != "LOINC":
        notes.append(f"{entry.label()} not found in the vocabulary; it matches nothing")
        return standard, source, patterns, notes
    if entry.descendants:
        found, note = vocab.descendants(found)
        if note:
            notes.append(f"{entry.label()}: {note}")
    standard |= found
    return standard, source, patterns, notes


def _kind_key(entry: ConceptEntry) -> tuple[str, str]:
    code = entry.code.strip()
    if entry.vocabulary == "RxNorm":
        return ("rxcode", code) if code.isdigit() else ("rxname", code.lower())
    return ("atc", code.upper()) if entry.vocabulary == "ATC" else ("loinc", code)


def prefetch_concept_sets(concept_sets: dict[str, ConceptSet], vocab: VocabularySource) -> None:
    """Batch the vocabulary look-ups of many concept sets: one query per code kind, one for the
    ICD-10-CM categories, one for all descendants (instead of several per code)."""
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
        vocab.icd10cm_concepts(sorted(cats))
    roots: set[int] = set()
    for e in entries:
        if e.descendants and e.vocabulary != "ICD10CM":
            roots |= {int(e.code)} if e.vocabulary == "OMOP" else vocab.find(*_kind_key(e))
    vocab.prefetch_descendants(roots)


def resolve_concept_set(name: str, concept_set: ConceptSet, vocab: VocabularySource) -> ResolvedConceptSet:
    """Resolve one concept set; codes that cannot be found become warnings, not errors."""
    out: dict[str, Any] = {"inc": [set(), set(), [], []], "exc": [set(), set(), [], []]}
    for key, entries in (("inc", concept_set.include), ("exc", concept_set.exclude)):
        acc = out[key]
        for entry in entries:
            std, src, pats, notes = _resolve_entry(entry, vocab)
            acc[0] |= std
            acc[1] |= src
            acc[2] += [p for p in pats if p not in acc[2]]
            acc[3] += notes
    inc, exc = out["inc"], out["exc"]
    resolved = ResolvedConceptSet(
        name=name,
        domain=concept_set.domain,
        concept_ids=frozenset(inc[0] - exc[0]),
        source_concept_ids=frozenset(inc[1] - exc[1]),
        source_patterns=tuple(inc[2]),
        excluded_concept_ids=frozenset(exc[0]),
        excluded_source_concept_ids=frozenset(exc[1]),
        excluded_source_patterns=tuple(exc[2]),
        warnings=[f"concept set {name!r}: {n}" for n in dict.fromkeys(inc[3] + exc[3])],
    )
    if resolved.is_empty:
        resolved.warnings.append(f"concept set {name!r} resolved to no concepts in this CDM")
    return resolved


def resolve_concept_sets(
    concept_sets: dict[str, ConceptSet], con: Any, *, database: Any = None, bundled: dict[str, pd.DataFrame] | None = None
) -> dict[str, ResolvedConceptSet]:
    """Resolve every concept set of a study against the CDM behind *con*."""
    vocab = VocabularySource(con, database=database, bundled=bundled)
    prefetch_concept_sets(concept_sets, vocab)
    return {name: resolve_concept_set(name, cs, vocab) for name, cs in concept_sets.items()}
