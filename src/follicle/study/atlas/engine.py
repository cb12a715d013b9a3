"""A Circe cohort definition compiled into Ibis expressions and run in the database.

The steps are Circe's, in its order: primary events (criteria of the entry, in an observation
period with the required days before and after, first / last / all per person), additional
criteria and the qualified limit, inclusion rules (one flag per rule) and the expression limit,
the end of each included event (observation period end, or the end strategy: a date offset
capped at the observation period end, or a custom drug era), censoring events, and finally the
collapse of overlapping periods into eras (with the era pad) and the censor window. The result is
``subject_id, cohort_start_date, cohort_end_date`` and the inclusion-rule counts.

Ties that Circe's SQL leaves to the engine (two qualified events on one day under a First/Last
limit) are broken by the primary event order (start date, then the domain's row id), so the
result is the same on every backend.

References
----------
OHDSI circe-be, ``CohortExpressionQueryBuilder`` and ``generateCohort.sql``,
``customEraStrategy.sql``, ``dateOffsetStrategy.sql``, ``cohortInclusionAnalysis.sql``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import sqlglot.expressions as sge

from follicle.study.atlas import groups
from follicle.study.atlas import model as m
from follicle.study.atlas.codesets import Codesets, resolve_codesets
from follicle.study.atlas.domains import I64, CriteriaCompiler, dateadd, observation_periods
from follicle.study.events import Cdm

EVENT_COLUMNS = ("person_id", "event_id", "start_date", "end_date", "visit_occurrence_id", "op_start_date", "op_end_date")


@dataclass
class CompiledDefinition:
    """A definition as expressions: ``cohort`` (the final rows), ``qualified`` events with one
    ``rule_<i>`` flag per inclusion rule, and the rule names."""

    cohort: ir.Table
    qualified: ir.Table
    rules: list[str]
    warnings: list[str] = field(default_factory=list)
    temp_tables: list[str] = field(default_factory=list)
    con: Any = None

    def close(self) -> None:
        """Drop the temporary tables the compiler made (see :func:`compile_on`)."""
        for name in self.temp_tables:
            drop_temp(self.con, name)
        self.temp_tables.clear()

    def __enter__(self) -> CompiledDefinition:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Persist = Callable[[ir.Table, str], ir.Table]


def drop_temp(con: Any, name: str) -> None:
    """``DROP TABLE IF EXISTS name`` (Ibis 12's ``drop_table`` fails on DuckDB temporary tables)."""
    sql = sge.Drop(tables=[sge.to_table(name)], kind="TABLE", exists=True).sql(dialect=con.dialect)
    result = con.raw_sql(sql)
    if con.name != "duckdb" and hasattr(result, "close"):  # a cursor (DuckDB returns its connection)
        result.close()


def _keep(t: ir.Table, label: str) -> ir.Table:
    return t


def _union(parts: list[ir.Table]) -> ir.Table:
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def primary_events(expr: m.CohortExpression, crit: CriteriaCompiler) -> ir.Table:
    """Circe's primary events: ``event_id`` is the event's rank in the person's order."""
    pc = expr.primary_criteria
    events = _union([crit.events(c).drop("count_value") for c in pc.criteria_list])
    op = observation_periods(crit.cdm)
    w = pc.observation_window
    j = events.join(op, [events.person_id == op.op_person_id, events.start_date >= op.op_start_date,
                         events.start_date <= op.op_end_date])
    j = j.filter(dateadd(j.op_start_date, w.prior_days) <= j.start_date,
                 dateadd(j.start_date, w.post_days) <= j.op_end_date)
    desc = pc.primary_limit.kind == "LAST"
    order = [ibis.desc(j.sort_date) if desc else j.sort_date, j.event_id, j.end_date]
    j = j.mutate(ordinal=ibis.row_number().over(ibis.window(group_by=j.person_id, order_by=order)) + 1)
    if pc.primary_limit.kind != "ALL":
        j = j.filter(j.ordinal == 1)
    return j.select(person_id=j.person_id, event_id=j.ordinal.cast(I64), start_date=j.start_date,
                    end_date=j.end_date, visit_occurrence_id=j.visit_occurrence_id,
                    op_start_date=j.op_start_date, op_end_date=j.op_end_date)


def _first_per_person(t: ir.Table, kind: str) -> ir.Table:
    """Circe's First/Last limit over ``start_date`` (ties: the primary event order)."""
    if kind == "ALL":
        return t
    order = [ibis.desc(t.start_date) if kind == "LAST" else t.start_date, t.event_id]
    t = t.mutate(_rank=ibis.row_number().over(ibis.window(group_by=t.person_id, order_by=order)))
    return t.filter(t._rank == 0).drop("_rank")


def qualified_events(expr: m.CohortExpression, crit: CriteriaCompiler) -> ir.Table:
    pe = primary_events(expr, crit)
    if expr.additional_criteria is None:
        return pe  # Circe applies the qualified limit only with additional criteria
    ok = groups.group(pe, expr.additional_criteria, crit)
    qe = pe.semi_join(ok, list(groups.KEYS))
    return _first_per_person(qe, expr.qualified_limit.kind)


def with_rule_flags(qe: ir.Table, expr: m.CohortExpression, crit: CriteriaCompiler) -> ir.Table:
    """The qualified events with a boolean ``rule_<i>`` per inclusion rule."""
    t = qe
    for i, rule in enumerate(expr.inclusion_rules):
        ok = groups.group(qe, rule.expression, crit).mutate(**{f"rule_{i}": ibis.literal(True)})
        t = t.left_join(ok, list(groups.KEYS)).select(*t.columns, ibis._[f"rule_{i}"])
        t = t.mutate(**{f"rule_{i}": t[f"rule_{i}"].fill_null(False)})
    return t


def _custom_era_ends(inc: ir.Table, s: m.CustomEraStrategy, crit: CriteriaCompiler) -> ir.Table:
    """Circe's custom era strategy: drug eras of the codeset (gap and offset added to each
    exposure end), the era that holds an event's start ends it."""
    de = crit.cdm.table("drug_exposure")
    people = inc.select("person_id").distinct()
    start = de.drug_exposure_start_date.cast("date")
    if s.days_supply_override is not None:
        end = dateadd(start, s.days_supply_override)
    else:
        end = ibis.coalesce(de.drug_exposure_end_date.cast("date"), dateadd(start, de.days_supply), dateadd(start, 1))
    codes = crit.codesets.concepts(s.drug_codeset_id)
    exposures = [de.filter(de[col].isin(codes)).select(person_id=de.person_id.cast(I64), start_date=start, end_date=end)
                 for col in ("drug_concept_id", "drug_source_concept_id")]
    dt = _union(exposures).semi_join(people, "person_id")
    dt = dt.mutate(end_date=dateadd(dt.end_date, s.gap_days + s.offset))
    eras = collapse(dt, pad=0).mutate(era_end=lambda t: dateadd(t.end_date, -s.gap_days))
    e = eras.select(e_person_id="person_id", era_start="start_date", era_end="era_end")
    j = inc.join(e, inc.person_id == e.e_person_id)
    j = j.filter(j.start_date >= j.era_start, j.start_date <= j.era_end)
    return j.select("event_id", "person_id", end_date=j.era_end)


def end_dates(inc: ir.Table, expr: m.CohortExpression, crit: CriteriaCompiler) -> ir.Table:
    """Every candidate end of every included event (``event_id, person_id, end_date``)."""
    parts: list[ir.Table] = []
    strategy = expr.end_strategy
    offset = strategy.date_offset if strategy else None
    if offset is None:
        parts.append(inc.select("event_id", "person_id", end_date=inc.op_end_date))
    if offset is not None:
        shifted = dateadd(inc.start_date if offset.date_field == "StartDate" else inc.end_date, offset.offset)
        parts.append(inc.select("event_id", "person_id",
                                end_date=ibis.ifelse(shifted > inc.op_end_date, inc.op_end_date, shifted)))
    elif strategy is not None and strategy.custom_era is not None:
        parts.append(_custom_era_ends(inc, strategy.custom_era, crit))
    for criterion in expr.censoring_criteria:
        c = crit.events(criterion)
        c = c.select(c_person_id="person_id", c_start="start_date")
        j = inc.join(c, inc.person_id == c.c_person_id)
        j = j.filter(j.c_start >= j.start_date, j.c_start <= j.op_end_date)
        parts.append(j.group_by(["event_id", "person_id"]).aggregate(end_date=j.c_start.min()))
    return _union(parts)


def collapse(rows: ir.Table, *, pad: int) -> ir.Table:
    """Circe's era builder: periods (end + pad) that overlap or touch are merged; the pad is
    taken off the merged end. Returns ``person_id, start_date, end_date``."""
    r = rows.select("person_id", "start_date", end_date=dateadd(rows.end_date, pad))
    w = ibis.window(group_by=r.person_id, order_by=[r.start_date, r.end_date], preceding=None, following=0)
    r = r.mutate(run_max=r.end_date.max().over(w))
    before = ibis.window(group_by=r.person_id, order_by=[r.start_date, r.end_date])
    r = r.mutate(prev_max=r.run_max.lag().over(before))
    r = r.mutate(is_start=ibis.ifelse(r.prev_max.notnull() & (r.prev_max >= r.start_date), 0, 1))
    starts_first = ibis.window(group_by=r.person_id, order_by=[r.start_date, ibis.desc(r.is_start), r.end_date],
                               preceding=None, following=0)
    r = r.mutate(group_idx=r.is_start.sum().over(starts_first))
    g = r.group_by(["person_id", "group_idx"]).aggregate(start_date=r.start_date.min(), end_date=r.end_date.max())
    return g.select("person_id", "start_date", end_date=dateadd(g.end_date, -pad))


def compile_definition(expr: m.CohortExpression, cdm: Cdm, codesets: Codesets, *, persist: Persist = _keep) -> CompiledDefinition:
    """The cohort rows and the inclusion-rule flags of *expr* as Ibis expressions on *cdm*;
    *persist* may compute the stages that are read several times into (temporary) tables."""
    crit = CriteriaCompiler(cdm, codesets)
    crit.correlate = lambda p, g: groups.group(p, g, crit)
    qe = persist(qualified_events(expr, crit), "qualified")
    qe = persist(with_rule_flags(qe, expr, crit), "flags")
    rules = [f"rule_{i}" for i in range(len(expr.inclusion_rules))]
    inc = qe.filter(*[qe[r] for r in rules]) if rules else qe
    inc = persist(_first_per_person(inc.select(*EVENT_COLUMNS), expr.expression_limit.kind), "included")
    ends = end_dates(inc, expr, crit)
    x = ends.select(x_event_id="event_id", x_person_id="person_id", x_end="end_date")
    j = inc.join(x, [inc.event_id == x.x_event_id, inc.person_id == x.x_person_id])
    j = j.filter(j.x_end >= j.start_date)
    rows = j.group_by(["person_id", "event_id", "start_date"]).aggregate(end_date=j.x_end.min())
    final = collapse(rows, pad=expr.collapse_settings.era_pad)
    start, end = final.start_date, final.end_date
    cw = expr.censor_window
    if cw is not None and cw.start_date:
        lo = ibis.literal(date.fromisoformat(cw.start_date), "date")
        start = ibis.ifelse(start > lo, start, lo)
    if cw is not None and cw.end_date:
        hi = ibis.literal(date.fromisoformat(cw.end_date), "date")
        end = ibis.ifelse(end < hi, end, hi)
    cohort = final.select(subject_id=final.person_id, cohort_start_date=start, cohort_end_date=end)
    if cw is not None and (cw.start_date or cw.end_date):
        cohort = cohort.filter(cohort.cohort_start_date <= cohort.cohort_end_date)
    return CompiledDefinition(cohort=persist(cohort, "cohort"), qualified=qe, rules=[r.name for r in expr.inclusion_rules],
                              warnings=list(codesets.warnings))


def compile_on(expr: m.CohortExpression, con: Any, *, database: Any = None, materialize: bool = False,
               persist: Persist | None = None) -> CompiledDefinition:
    """Resolve the concept sets against *con*'s vocabulary, then compile. With ``materialize``
    the stages read more than once are computed once into temporary tables, dropped by
    :meth:`CompiledDefinition.close` (or give *persist*, e.g. a study's event store)."""
    temp: list[str] = []

    def to_temp(t: ir.Table, label: str) -> ir.Table:
        name = ibis.util.gen_name(f"follicle_atlas_{label}")
        table = con.create_table(name, t, temp=True)
        temp.append(name)
        return table

    chosen = persist or (to_temp if materialize else _keep)
    codesets = resolve_codesets(expr.concept_sets, con, database=database)
    try:
        compiled = compile_definition(expr, Cdm(con, database=database), codesets, persist=chosen)
    except Exception:
        for name in temp:
            drop_temp(con, name)
        raise
    compiled.temp_tables, compiled.con = temp, con
    return compiled
