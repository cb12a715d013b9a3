"""Circe concept set expressions resolved against the CDM's vocabulary, as Circe does it.

For each set: the listed concepts that exist in ``concept``; with ``includeDescendants``, their
descendants through ``concept_ancestor`` that are valid (``invalid_reason`` NULL); with
``includeMapped``, the concepts that map to those (``concept_relationship`` 'Maps to', valid);
then the same for the ``isExcluded`` items, removed. The vocabulary tables are found through
:class:`follicle.vocab.source.VocabularySource` (the CDM's, or the bundled subset when the CDM
has none); where ``concept_ancestor`` is empty (Synthea27Nj) descendants come from its
relationship walk (:meth:`~follicle.vocab.source.VocabularySource.descendants`) and a warning says
so. Only concept ids (vocabulary, not patient data) leave the database.

References
----------
OHDSI circe-be, ``ConceptSetExpressionQueryBuilder`` and its ``conceptSetExpression*.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from follicle.study.atlas.model import ConceptSet, ConceptSetItem
from follicle.vocab.source import VocabularySource


@dataclass
class Codesets:
    """Resolved concept sets: ids per Circe codeset id, and what had to be noted."""

    ids: dict[int, frozenset[int]]
    warnings: list[str] = field(default_factory=list)
    _table: ir.Table | None = None

    def table(self) -> ir.Table:
        """``codeset_id, concept_id`` as an in-memory table the engine joins in place."""
        if self._table is None:
            rows = [(cid, c) for cid, ids in sorted(self.ids.items()) for c in sorted(ids)]
            self._table = ibis.memtable(pa.table({
                "codeset_id": pa.array([r[0] for r in rows], pa.int64()),
                "concept_id": pa.array([r[1] for r in rows], pa.int64()),
            }))
        return self._table

    def concepts(self, codeset_id: int) -> ir.Column:
        """The concept ids of one codeset, for ``column.isin(...)`` (an IN subquery)."""
        t = self.table()
        return t.filter(t.codeset_id == codeset_id).concept_id


def _first(tables: list[ir.Table]) -> ir.Table | None:
    return tables[0] if tables else None


def _ids(con: Any, expr: ir.Table, column: str) -> set[int]:
    frame = con.execute(expr.select(expr[column]).distinct())
    return {int(v) for v in frame[column].dropna()}


class _Resolver:
    def __init__(self, vocab: VocabularySource) -> None:
        self.vocab = vocab
        self.con = vocab.con
        self.concept = _first(vocab.sources("concept"))
        self.ancestor = vocab.cdm_table("concept_ancestor")
        self.relationship = _first(vocab.sources("concept_relationship"))
        self.warnings: list[str] = []

    def existing(self, ids: set[int]) -> set[int]:
        """The *ids* present in ``concept`` (Circe selects the listed concepts from it)."""
        if not ids:
            return set()
        if self.concept is None:
            self._warn("the CDM has no concept table: listed concepts used as they are")
            return set(ids)
        c = self.concept
        return _ids(self.con, c.filter(c.concept_id.isin(sorted(ids))), "concept_id")

    def valid(self, ids: set[int]) -> set[int]:
        if not ids or self.concept is None:
            return set(ids)
        c = self.concept
        return _ids(self.con, c.filter(c.concept_id.isin(sorted(ids)), c.invalid_reason.isnull()), "concept_id")

    def descendants(self, roots: set[int], label: str) -> set[int]:
        """Valid descendants of *roots* (themselves included when valid), as Circe's ancestor join."""
        if not roots:
            return set()
        if self.ancestor is not None:
            a = self.ancestor
            expr = a.filter(a.ancestor_concept_id.isin(sorted(roots)))
            if self.concept is not None:  # an IN subquery: engines hash it (a join may loop)
                c = self.concept
                expr = expr.filter(expr.descendant_concept_id.isin(c.filter(c.invalid_reason.isnull()).concept_id))
            return _ids(self.con, expr, "descendant_concept_id")
        found, note = self.vocab.descendants(set(roots))
        self._warn(f"concept set {label!r}: {note or 'concept_ancestor is empty'}")
        return self.valid(found)

    def mapped(self, ids: set[int]) -> set[int]:
        """Concepts that map ('Maps to', valid) to *ids*."""
        if not ids:
            return set()
        r = self.relationship
        if r is None:
            self._warn("the CDM has no concept_relationship: includeMapped adds nothing")
            return set()
        expr = r.filter(r.concept_id_2.isin(sorted(ids)), r.relationship_id == "Maps to", r.invalid_reason.isnull())
        return _ids(self.con, expr, "concept_id_1")

    def items(self, items: list[ConceptSetItem], label: str) -> set[int]:
        """Circe's ``buildConceptSetQuery`` for the included (or the excluded) items of a set."""
        if not items:
            return set()
        ids = {i.concept.concept_id for i in items}
        desc = {i.concept.concept_id for i in items if i.include_descendants}
        out = self.existing(ids) | self.descendants(desc, label)
        mapped = {i.concept.concept_id for i in items if i.include_mapped}
        mapped_desc = {i.concept.concept_id for i in items if i.include_mapped and i.include_descendants}
        if mapped or mapped_desc:
            out |= self.mapped(self.existing(mapped) | self.descendants(mapped_desc, label))
        return out

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def resolve_codesets(concept_sets: list[ConceptSet], con: Any, *, database: Any = None) -> Codesets:
    """Resolve every concept set of a definition against the vocabulary behind *con*."""
    r = _Resolver(VocabularySource(con, database=database))
    ids: dict[int, frozenset[int]] = {}
    for cs in concept_sets:
        label = cs.name or str(cs.id)
        items = cs.expression.items
        included = r.items([i for i in items if not i.is_excluded], label)
        excluded = r.items([i for i in items if i.is_excluded], label)
        ids[cs.id] = frozenset(included - excluded)
        if not ids[cs.id]:
            r._warn(f"concept set {label!r} (id {cs.id}) resolved to no concepts in this CDM")
    return Codesets(ids=ids, warnings=r.warnings)
