"""Property tests of the descendant closure (hypothesis): closed, duplicate-free, and the same
whether taken from concept_ancestor, from concept_relationship, or computed in memory."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from follicle.vocab.closure import (
    ancestor_rows,
    children_from_edges,
    descendant_closure,
    is_closed,
)
from follicle.vocab.resolve import VocabularySource

NODES = st.integers(min_value=1, max_value=40)
EDGES = st.lists(st.tuples(NODES, NODES), max_size=80)  # cycles and self-loops allowed


def _reachable(roots, edges):
    """Reference: reachability by naive fixed-point iteration."""
    out = set(roots)
    while True:
        nxt = out | {c for p, c in edges if p in out}
        if nxt == out:
            return out
        out = nxt


@given(roots=st.lists(NODES, min_size=1, max_size=5), edges=EDGES)
def test_closure_is_closed_and_duplicate_free(roots, edges):
    got = descendant_closure(roots, children_from_edges(edges))
    assert len(got) == len(set(got))  # duplicate-free
    assert got == sorted(got)
    index: dict[int, set[int]] = {}
    for p, c in edges:
        index.setdefault(p, set()).add(c)
    assert is_closed(got, index)  # every child of a member is a member
    assert set(roots) <= set(got)
    assert set(got) == _reachable(set(roots), edges)  # and nothing more than what is reachable


@given(edges=EDGES)
def test_closure_is_idempotent(edges):
    children = children_from_edges(edges)
    once = descendant_closure([1, 2], children)
    assert descendant_closure(once, children) == once


@given(edges=EDGES)
def test_ancestor_rows_reflexive_and_unique(edges):
    concepts = {n for e in edges for n in e} | {1}
    rows = ancestor_rows(edges, concepts)
    assert len(rows) == len(set(rows))
    assert all((c, c) in set(rows) for c in concepts)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(roots=st.lists(NODES, min_size=1, max_size=4, unique=True), edges=EDGES)
def test_database_paths_agree(make_db, roots, edges):
    """Descendants from a concept_ancestor table and from a concept_relationship walk (the
    Synthea27Nj fallback) equal the in-memory closure."""
    concepts = sorted({n for e in edges for n in e} | set(roots))
    anc = pd.DataFrame(ancestor_rows(edges, concepts), columns=["ancestor_concept_id", "descendant_concept_id"])
    rel = pd.DataFrame({"concept_id_1": [p for p, _ in edges] or [0], "concept_id_2": [c for _, c in edges] or [0],
                        "relationship_id": ["Subsumes"] * max(len(edges), 1)})
    expected = descendant_closure(roots, children_from_edges(edges))
    with_anc = VocabularySource(make_db({"concept_ancestor": anc}), bundled={})
    got, note = with_anc.descendants(set(roots))
    assert sorted(got) == expected and note is None
    empty_anc = anc.iloc[0:0]
    with_rel = VocabularySource(make_db({"concept_ancestor": empty_anc, "concept_relationship": rel}), bundled={})
    got, note = with_rel.descendants(set(roots))
    assert sorted(got) == expected
    assert "concept_relationship" in note
