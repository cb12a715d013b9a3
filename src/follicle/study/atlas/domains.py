"""Circe domain criteria as Ibis expressions: the events of one criterion.

Each criterion gives a table of ``person_id, event_id, start_date, end_date,
visit_occurrence_id, sort_date, count_value`` with Circe's columns: the domain's own row id as
``event_id`` (the person for Death), its default end date (e.g. a drug exposure ends at its end
date, else start + days supply, else start + 1 day), ``First`` taken among the events of the
concept set before any other filter, then the attribute filters, then any correlated criteria.

References
----------
OHDSI circe-be, ``org.ohdsi.circe.cohortdefinition.builders`` (one ``*SqlBuilder`` per domain)
and ``BuilderUtils`` (numeric, date and concept filters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir

from follicle.study.atlas import model as m

I64 = "int64"


def dateadd(d: ir.DateValue, days: int | ir.IntegerValue) -> ir.DateValue:
    """``DATEADD(day, days, d)`` as a date (date + interval is a timestamp on some engines)."""
    interval = ibis.interval(days=days) if isinstance(days, int) else days.cast(I64).as_interval("D")
    return (d + interval).cast("timestamp").cast("date")


def datediff(start: ir.DateValue, end: ir.DateValue) -> ir.IntegerValue:
    """``DATEDIFF(d, start, end)``: whole days from *start* to *end*."""
    return end.delta(start, unit="day")


def date_literal(text: str) -> ir.DateValue:
    return ibis.literal(date.fromisoformat(text), "date")


_OPS: dict[str, Callable[[Any, Any], ir.BooleanValue]] = {
    "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b, "eq": lambda a, b: a == b,
    "!eq": lambda a, b: a != b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
}


def numeric_clause(expr: ir.NumericValue, r: m.NumericRange, *, decimal: bool = False) -> ir.BooleanValue:
    """Circe's ``buildNumericRangeClause``: integers truncated, decimals to 4 places (``%.4f``)."""
    def lit(v: float) -> Any:
        return round(v, 4) if decimal else int(v)

    if r.op.endswith("bt"):
        inside = (expr >= lit(r.value)) & (expr <= lit(r.extent))  # type: ignore[arg-type]
        return ~inside if r.op.startswith("!") else inside
    return _OPS[r.op](expr, lit(r.value))


def date_clause(expr: ir.DateValue, r: m.DateRange) -> ir.BooleanValue:
    """Circe's ``buildDateRangeClause``."""
    if r.op.endswith("bt"):
        inside = (expr >= date_literal(r.value)) & (expr <= date_literal(r.extent))  # type: ignore[arg-type]
        return ~inside if r.op.startswith("!") else inside
    return _OPS[r.op](expr, date_literal(r.value))


def concept_ids(concepts: list[m.Concept] | None) -> list[int]:
    return [c.concept_id for c in concepts or []]


@dataclass(frozen=True)
class Domain:
    """Where a Circe domain lives: table, concept and id columns, dates, the ordinal of ``First``."""

    table: str
    concept: str | None
    source_field: str | None  # name of the criterion's source-concept codeset field
    source_concept: str | None
    event_id: str
    start: str
    visit: str | None
    domain_concept: str


DOMAINS: dict[str, Domain] = {
    "ConditionOccurrence": Domain("condition_occurrence", "condition_concept_id", "condition_source_concept",
                                  "condition_source_concept_id", "condition_occurrence_id", "condition_start_date",
                                  "visit_occurrence_id", "condition_concept_id"),
    "DrugExposure": Domain("drug_exposure", "drug_concept_id", "drug_source_concept", "drug_source_concept_id",
                           "drug_exposure_id", "drug_exposure_start_date", "visit_occurrence_id", "drug_concept_id"),
    "ProcedureOccurrence": Domain("procedure_occurrence", "procedure_concept_id", "procedure_source_concept",
                                  "procedure_source_concept_id", "procedure_occurrence_id", "procedure_date",
                                  "visit_occurrence_id", "procedure_concept_id"),
    "Measurement": Domain("measurement", "measurement_concept_id", "measurement_source_concept",
                          "measurement_source_concept_id", "measurement_id", "measurement_date",
                          "visit_occurrence_id", "measurement_concept_id"),
    "Observation": Domain("observation", "observation_concept_id", "observation_source_concept",
                          "observation_source_concept_id", "observation_id", "observation_date",
                          "visit_occurrence_id", "observation_concept_id"),
    "VisitOccurrence": Domain("visit_occurrence", "visit_concept_id", "visit_source_concept",
                              "visit_source_concept_id", "visit_occurrence_id", "visit_start_date",
                              "visit_occurrence_id", "visit_concept_id"),
    "Death": Domain("death", "cause_concept_id", "death_source_concept", "cause_source_concept_id", "person_id",
                    "death_date", None, "cause_concept_id"),
    "ConditionEra": Domain("condition_era", "condition_concept_id", None, None, "condition_era_id",
                           "condition_era_start_date", None, "condition_concept_id"),
    "DrugEra": Domain("drug_era", "drug_concept_id", None, None, "drug_era_id", "drug_era_start_date", None,
                      "drug_concept_id"),
    "ObservationPeriod": Domain("observation_period", None, None, None, "observation_period_id",
                                "observation_period_start_date", None, "period_type_concept_id"),
}


def _dates(domain: str, t: ir.Table) -> tuple[ir.DateValue, ir.DateValue, ir.DateValue]:
    """(start, default end, the column Circe's DateAdjustment calls END_DATE) of a domain."""
    start = t[DOMAINS[domain].start].cast("date")
    plus1 = dateadd(start, 1)
    if domain == "ConditionOccurrence":
        end = ibis.coalesce(t.condition_end_date.cast("date"), plus1)
        return start, end, end
    if domain == "DrugExposure":
        raw = t.drug_exposure_end_date.cast("date")
        return start, ibis.coalesce(raw, dateadd(start, t.days_supply), plus1), raw
    if domain == "VisitOccurrence":
        end = t.visit_end_date.cast("date")
        return start, end, end
    if domain in ("ConditionEra", "DrugEra"):
        end = t[domain.replace("Era", "_era").lower() + "_end_date"].cast("date")
        return start, end, end
    if domain == "ObservationPeriod":
        end = t.observation_period_end_date.cast("date")
        return start, end, end
    return start, plus1, plus1  # procedure, measurement, observation, death: one day


class CriteriaCompiler:
    """Turns criteria into event tables; ``groups`` compiles correlated criteria (set by the engine)."""

    def __init__(self, cdm: Any, codesets: Any) -> None:
        self.cdm = cdm
        self.codesets = codesets
        self.correlate: Callable[[ir.Table, m.CriteriaGroup], ir.Table] | None = None

    def person(self) -> ir.Table:
        p = self.cdm.table("person")
        return p.select(p_person_id=p.person_id.cast(I64), year_of_birth=p.year_of_birth.cast(I64),
                        gender_concept_id=p.gender_concept_id.cast(I64), race_concept_id=p.race_concept_id.cast(I64),
                        ethnicity_concept_id=p.ethnicity_concept_id.cast(I64))

    def in_codeset(self, column: ir.Column, sel: m.ConceptSetSelection) -> ir.BooleanValue:
        hit = column.isin(self.codesets.concepts(sel.codeset_id))
        return ~hit if sel.is_exclusion else hit

    def events(self, criterion: m.Criterion, count_column: str | None = None) -> ir.Table:
        """The events of *criterion* (see the module docstring); ``count_value`` holds the column
        that a distinct occurrence count counts (``DOMAIN_CONCEPT`` by default)."""
        name, c = criterion.domain, criterion.body
        d = DOMAINS[name]
        t = self.cdm.table(d.table)
        if c.codeset_id is not None and d.concept is not None:
            t = t.filter(t[d.concept].isin(self.codesets.concepts(c.codeset_id)))
        source = getattr(c, d.source_field, None) if d.source_field else None
        if source is not None:
            t = t.filter(t[d.source_concept].isin(self.codesets.concepts(source)))
        keep: list[ir.BooleanValue] = []
        if c.first and name != "Death":
            w = ibis.window(group_by=t.person_id, order_by=[t[d.start], t[d.event_id]])
            t = t.mutate(_ordinal=ibis.row_number().over(w))
            keep.append(t._ordinal == 0)  # Ibis numbers rows from 0
        start, end, adj_end = _dates(name, t)
        adj: m.DateAdjustment | None = getattr(c, "date_adjustment", None)
        if adj is not None:
            pick = {"START_DATE": start, "END_DATE": adj_end}
            start, end = dateadd(pick[adj.start_with], adj.start_offset), dateadd(pick[adj.end_with], adj.end_offset)
        t = t.mutate(_start=start, _end=end)
        keep += self._filters(name, c, t)
        needs_person = any(getattr(c, f, None) for f in ("age", "gender", "gender_cs", "age_at_start", "age_at_end"))
        if needs_person:
            p = self.person()
            t = t.join(p, t.person_id.cast(I64) == p.p_person_id)
            keep += self._person_filters(c, t)
        if keep:
            t = t.filter(*keep)
        counted = {"START_DATE": t._start.cast("string"), "VISIT_ID": _visit(t, d).cast("string"),
                   None: t[d.domain_concept].cast(I64).fill_null(0).cast("string") if name == "Death"
                   else t[d.domain_concept].cast(I64).cast("string")}
        ev = t.select(
            person_id=t.person_id.cast(I64), event_id=t[d.event_id].cast(I64), start_date=t._start,
            end_date=t._end, visit_occurrence_id=_visit(t, d), sort_date=t._start,
            count_value=counted.get(count_column, counted[None]),
        )
        if c.correlated_criteria is not None and self.correlate is not None:
            ev = self._with_correlated(ev, c.correlated_criteria)
        return ev

    def _with_correlated(self, ev: ir.Table, group: m.CriteriaGroup) -> ir.Table:
        """Circe's ``wrapCriteriaQuery``: the events, in their observation period, that satisfy *group*."""
        op = observation_periods(self.cdm)
        j = ev.join(op, [ev.person_id == op.op_person_id, op.op_start_date <= ev.start_date,
                         op.op_end_date >= ev.start_date])
        table = j.select("person_id", "event_id", "start_date", "end_date", "visit_occurrence_id",
                         "op_start_date", "op_end_date")
        ok = self.correlate(table, group)  # type: ignore[misc]
        return ev.semi_join(ok, [ev.person_id == ok.person_id, ev.event_id == ok.event_id])

    def _filters(self, name: str, c: Any, t: ir.Table) -> list[ir.BooleanValue]:
        out: list[ir.BooleanValue] = []
        for field_name, expr in (("occurrence_start_date", t._start), ("occurrence_end_date", t._end),
                                 ("era_start_date", t._start), ("era_end_date", t._end),
                                 ("period_start_date", t._start), ("period_end_date", t._end)):
            r = getattr(c, field_name, None)
            if r is not None:
                out.append(date_clause(expr, r))
        lists = {
            "condition_type": "condition_type_concept_id", "condition_status": "condition_status_concept_id",
            "drug_type": "drug_type_concept_id", "route_concept": "route_concept_id",
            "procedure_type": "procedure_type_concept_id", "modifier": "modifier_concept_id",
            "measurement_type": "measurement_type_concept_id", "operator": "operator_concept_id",
            "value_as_concept": "value_as_concept_id", "unit": "unit_concept_id",
            "observation_type": "observation_type_concept_id", "qualifier": "qualifier_concept_id",
            "visit_type": "visit_type_concept_id", "death_type": "death_type_concept_id",
            "period_type": "period_type_concept_id",
        }
        for field_name, column in lists.items():
            ids = concept_ids(getattr(c, field_name, None))
            if ids:
                hit = t[column].isin(ids)
                out.append(~hit if getattr(c, f"{field_name}_exclude", False) else hit)
        numbers = {"refills": ("refills", False), "quantity": ("quantity", False), "days_supply": ("days_supply", False),
                   "value_as_number": ("value_as_number", True), "range_low": ("range_low", True),
                   "range_high": ("range_high", True)}
        for field_name, (column, decimal) in numbers.items():
            r = getattr(c, field_name, None)
            if r is not None:
                out.append(numeric_clause(t[column], r, decimal=decimal))
        if name in ("ConditionEra", "DrugEra") and c.occurrence_count is not None:
            col = "condition_occurrence_count" if name == "ConditionEra" else "drug_exposure_count"
            out.append(numeric_clause(t[col], c.occurrence_count))
        for field_name in ("era_length", "visit_length", "period_length"):
            r = getattr(c, field_name, None)
            if r is not None:
                out.append(numeric_clause(datediff(t._start, t._end), r))
        return out

    def _person_filters(self, c: Any, t: ir.Table) -> list[ir.BooleanValue]:
        out: list[ir.BooleanValue] = []
        for field_name, when in (("age", t._start), ("age_at_start", t._start), ("age_at_end", t._end)):
            r = getattr(c, field_name, None)
            if r is not None:
                out.append(numeric_clause(when.year().cast(I64) - t.year_of_birth, r))
        if concept_ids(c.gender):
            out.append(t.gender_concept_id.isin(concept_ids(c.gender)))
        if c.gender_cs is not None:
            out.append(self.in_codeset(t.gender_concept_id, c.gender_cs))
        return out


def _visit(t: ir.Table, d: Domain) -> ir.IntegerValue:
    return t[d.visit].cast(I64) if d.visit else ibis.literal(None, I64)


def observation_periods(cdm: Any) -> ir.Table:
    """``op_person_id, op_start_date, op_end_date`` of the CDM's observation periods."""
    op = cdm.table("observation_period")
    return op.select(op_person_id=op.person_id.cast(I64),
                     op_start_date=op.observation_period_start_date.cast("date"),
                     op_end_date=op.observation_period_end_date.cast("date"))
