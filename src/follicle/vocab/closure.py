"""Descendant closure over parent -> child edges, for vocabularies without ``concept_ancestor``.

Pure functions: the caller supplies how to find the children of a set of concepts (a dict, or a
database query over ``concept_relationship``), so the same breadth-first walk serves tests and
databases. Cycles (present in real relationship tables) are harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

#: ``concept_relationship.relationship_id`` values that point from a concept to a narrower one
#: (SNOMED hierarchy, RxNorm ingredient -> drug forms -> products, ATC class -> ingredient).
DOWNWARD_RELATIONSHIPS: tuple[str, ...] = (
    "Subsumes",
    "RxNorm ing of",
    "RxNorm inverse is a",
    "Constitutes",
    "Has tradename",
    "Has marketed form",
    "Has quantified form",
    "Available as box",
    "Contained in",
    "ATC - RxNorm",
    "ATC - RxNorm pr lat",
    "ATC - RxNorm sec lat",
    "ATC - RxNorm pr up",
    "ATC - RxNorm sec up",
)

ChildrenOf = Callable[[frozenset[int]], Iterable[tuple[int, int]]]


def descendant_closure(roots: Iterable[int], children_of: ChildrenOf, *, max_depth: int = 64) -> list[int]:
    """All concepts reachable from *roots* (roots included), sorted and without duplicates.

    Parameters
    ----------
    roots : iterable of int
        Starting concept ids.
    children_of : callable
        Maps a frozenset of concept ids to ``(parent, child)`` pairs for those parents.
    max_depth : int
        Safety bound on the number of breadth-first rounds.
    """
    seen: set[int] = {int(r) for r in roots}
    frontier = frozenset(seen)
    for _ in range(max_depth):
        if not frontier:
            break
        nxt = {int(child) for parent, child in children_of(frontier) if int(parent) in frontier}
        frontier = frozenset(nxt - seen)
        seen |= frontier
    return sorted(seen)


def children_from_edges(edges: Iterable[tuple[int, int]]) -> ChildrenOf:
    """A :data:`ChildrenOf` over an in-memory edge list."""
    index: dict[int, set[int]] = {}
    for parent, child in edges:
        index.setdefault(int(parent), set()).add(int(child))

    def children_of(parents: frozenset[int]) -> list[tuple[int, int]]:
        return [(p, c) for p in parents for c in index.get(p, ())]

    return children_of


def ancestor_rows(edges: Iterable[tuple[int, int]], concepts: Iterable[int]) -> list[tuple[int, int]]:
    """``(ancestor, descendant)`` rows of the reflexive transitive closure, as ``concept_ancestor`` holds."""
    children_of = children_from_edges(edges)
    rows: list[tuple[int, int]] = []
    for c in sorted({int(x) for x in concepts}):
        rows.extend((c, d) for d in descendant_closure([c], children_of))
    return rows


def is_closed(members: Iterable[int], edges: Mapping[int, Iterable[int]]) -> bool:
    """True when every child of a member is a member (used by the property tests)."""
    s = set(members)
    return all(set(edges.get(m, ())) <= s for m in s)
