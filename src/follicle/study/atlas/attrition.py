"""Inclusion-rule attrition of a compiled Circe definition, as ATLAS reports it.

Events mode counts qualified events; persons mode counts each person's best event (the one that
satisfies most rules, then the lowest first satisfied rule, then the earliest), as Circe's
``#best_events``. ``remaining`` is the number after rules 1..i; ``satisfied`` after rule i alone.
The inclusion-rule masks (a bit per rule) are those of Circe's ``cohort_inclusion_result``.

References
----------
OHDSI circe-be, ``generateCohort.sql`` (best events) and ``cohortInclusionAnalysis.sql``.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from follicle.study.atlas.engine import CompiledDefinition


def _int(flag: ir.BooleanValue) -> ir.IntegerValue:
    return ibis.ifelse(flag, 1, 0).cast("int64")


def _with_masks(q: ir.Table, n: int) -> ir.Table:
    """Qualified events with ``mask``, ``rule_count``, ``min_rule`` and ``best`` (persons mode)."""
    flags = [q[f"rule_{i}"] for i in range(n)]
    mask = sum((_int(f) * (2 ** i) for i, f in enumerate(flags)), ibis.literal(0, "int64"))
    count = sum((_int(f) for f in flags), ibis.literal(0, "int64"))
    first_rule: ir.IntegerValue = ibis.literal(0, "int64")
    for i in reversed(range(n)):
        first_rule = ibis.ifelse(flags[i], i, first_rule)
    q = q.mutate(mask=mask, rule_count=count, min_rule=first_rule)
    w = ibis.window(group_by=q.person_id, order_by=[ibis.desc(q.rule_count), q.min_rule, q.start_date, q.event_id])
    return q.mutate(best=ibis.row_number().over(w) == 0)


def attrition(compiled: CompiledDefinition, con: Any) -> dict[str, Any]:
    """Counts of the definition in one query for the rules and one for the cohort.

    Returns ``{"qualified": {"events", "persons"}, "rules": [{"rule", "name", "satisfied_events",
    "remaining_events", "satisfied_persons", "remaining_persons"}], "cohort": {"entries", "persons"}}``.
    """
    n = len(compiled.rules)
    q = _with_masks(compiled.qualified, n)
    aggs: dict[str, ir.Value] = {"events": q.count(), "persons": q.person_id.nunique()}
    for i in range(n):
        cum = _cumulative(q, i)
        aggs |= {f"se_{i}": q.count(where=q[f"rule_{i}"]), f"re_{i}": q.count(where=cum),
                 f"sp_{i}": q.count(where=q.best & q[f"rule_{i}"]), f"rp_{i}": q.count(where=q.best & cum)}
    row = con.execute(q.aggregate(**aggs)).iloc[0]
    c = compiled.cohort
    final = con.execute(c.aggregate(entries=c.count(), persons=c.subject_id.nunique())).iloc[0]
    return {
        "qualified": {"events": int(row["events"]), "persons": int(row["persons"])},
        "rules": [{"rule": i + 1, "name": name, "satisfied_events": int(row[f"se_{i}"]),
                   "remaining_events": int(row[f"re_{i}"]), "satisfied_persons": int(row[f"sp_{i}"]),
                   "remaining_persons": int(row[f"rp_{i}"])} for i, name in enumerate(compiled.rules)],
        "cohort": {"entries": int(final["entries"]), "persons": int(final["persons"])},
    }


def _cumulative(q: ir.Table, i: int) -> ir.BooleanValue:
    return ibis.and_(*[q[f"rule_{k}"] for k in range(i + 1)])


def mask_counts(compiled: CompiledDefinition, con: Any) -> dict[tuple[int, int], int]:
    """``{(mode, mask): count}`` as Circe's ``cohort_inclusion_result`` (mode 0 events, 1 persons)."""
    q = _with_masks(compiled.qualified, len(compiled.rules))
    out: dict[tuple[int, int], int] = {}
    for mode, t in ((0, q), (1, q.filter(q.best))):
        frame = con.execute(t.group_by("mask").aggregate(n=t.count()))
        out |= {(mode, int(k)): int(v) for k, v in zip(frame["mask"], frame["n"], strict=True)}
    return out
