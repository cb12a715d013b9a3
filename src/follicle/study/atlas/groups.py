"""Circe criteria groups as Ibis expressions: which index events satisfy a group.

The index events (``P``) are a table with ``person_id, event_id, start_date, end_date,
visit_occurrence_id, op_start_date, op_end_date``. A correlated criterion counts the criterion's
events (``A``) in its windows around each index event and compares the count; a demographic
criterion tests the person at the index event; a group counts how many of its members hold
(ALL, ANY, AT_LEAST n, AT_MOST n). Every result is the ``person_id, event_id`` of the index
events that pass.

References
----------
OHDSI circe-be, ``CohortExpressionQueryBuilder.getCriteriaGroupQuery``,
``getCorelatedlCriteriaQuery``, ``getWindowedCriteriaQuery`` and ``getDemographicCriteriaQuery``.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from follicle.study.atlas import model as m
from follicle.study.atlas.domains import CriteriaCompiler, concept_ids, date_clause, dateadd, numeric_clause

KEYS = ("person_id", "event_id")


def _keys(t: ir.Table) -> ir.Table:
    return t.select(*KEYS).distinct()


def window_predicates(p: ir.Table, a: ir.Table, cc: m.CorelatedCriteria) -> list[ir.BooleanValue]:
    """The join predicates of Circe's windowed criteria (``a`` columns are prefixed ``a_``)."""
    check_op = not cc.ignore_observation_period
    preds: list[ir.BooleanValue] = [p.person_id == a.a_person_id]
    if check_op:
        preds += [a.a_start_date >= p.op_start_date, a.a_start_date <= p.op_end_date]
    for window, event_end_default in ((cc.start_window, False), (cc.end_window, True)):
        if window is None:
            continue
        index = p.end_date if window.use_index_end else p.start_date
        use_event_end = event_end_default if window.use_event_end is None else window.use_event_end
        event = a.a_end_date if use_event_end else a.a_start_date
        for endpoint, is_lower in ((window.start, True), (window.end, False)):
            if endpoint.days is not None:
                bound = dateadd(index, endpoint.coeff * endpoint.days)
            elif check_op:
                bound = p.op_start_date if endpoint.coeff == -1 else p.op_end_date
            else:
                continue
            preds.append(event >= bound if is_lower else event <= bound)
    if cc.restrict_visit:
        preds.append(a.a_visit_occurrence_id == p.visit_occurrence_id)
    return preds


def _compare(n: ir.IntegerValue, kind: int, count: int) -> ir.BooleanValue:
    return {0: n == count, 1: n <= count, 2: n >= count}[kind]


def correlated(p: ir.Table, cc: m.CorelatedCriteria, crit: CriteriaCompiler) -> ir.Table:
    """Index events of *p* whose count of *cc* events in its windows passes the occurrence test."""
    occ = cc.occurrence
    column = (occ.count_column or "DOMAIN_CONCEPT") if occ.is_distinct else None
    a = crit.events(cc.criteria, count_column=None if column == "DOMAIN_CONCEPT" else column)
    a = a.rename({f"a_{c}": c for c in a.columns})
    j = p.join(a, window_predicates(p, a, cc))
    matched = j.select("person_id", "event_id", value=j.a_count_value)
    n = matched.value.nunique() if occ.is_distinct else matched.count()
    counts = matched.group_by(list(KEYS)).aggregate(n=n)
    base = _keys(p)
    t = base.left_join(counts, list(KEYS)).select(*KEYS, n=ibis.coalesce(ibis._.n, 0))
    return t.filter(_compare(t.n, occ.type, occ.count)).select(*KEYS)


def demographic(p: ir.Table, dc: m.DemographicCriteria, crit: CriteriaCompiler) -> ir.Table:
    """Index events whose person meets *dc* (age as year of the event minus year of birth)."""
    person = crit.person()
    j = p.join(person, p.person_id == person.p_person_id)
    preds: list[ir.BooleanValue] = []
    if dc.age is not None:
        preds.append(numeric_clause(j.start_date.year().cast("int64") - j.year_of_birth, dc.age))
    for ids, column in ((concept_ids(dc.gender), "gender_concept_id"), (concept_ids(dc.race), "race_concept_id"),
                        (concept_ids(dc.ethnicity), "ethnicity_concept_id")):
        if ids:
            preds.append(j[column].isin(ids))
    if dc.occurrence_start_date is not None:
        preds.append(date_clause(j.start_date, dc.occurrence_start_date))
    if dc.occurrence_end_date is not None:
        preds.append(date_clause(j.end_date, dc.occurrence_end_date))
    return _keys(j.filter(*preds) if preds else j)


def group(p: ir.Table, g: m.CriteriaGroup, crit: CriteriaCompiler) -> ir.Table:
    """Index events of *p* that satisfy group *g* (an empty group lets every event pass)."""
    if g.is_empty:
        return _keys(p)
    parts = [correlated(p, cc, crit) for cc in g.criteria_list]
    parts += [demographic(p, dc, crit) for dc in g.demographic_criteria_list]
    parts += [group(p, sub, crit) for sub in g.groups]
    hits = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    counts = hits.group_by(list(KEYS)).aggregate(n=hits.count())
    t = _keys(p).left_join(counts, list(KEYS)).select(*KEYS, n=ibis.coalesce(ibis._.n, 0))
    need = {"ALL": t.n == len(parts), "ANY": t.n > 0,
            "AT_LEAST": t.n >= (g.count or 0), "AT_MOST": t.n <= (g.count or 0)}[g.type]
    return t.filter(need).select(*KEYS)
