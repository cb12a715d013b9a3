"""Compile a cohort of the spec into Ibis expressions: candidates with one flag per inclusion step.

A cohort starts from each person's first entry event (first exposure or first diagnosis). Every
inclusion step (in an observation period, prior observation, washout, minimum exposures, required
prior conditions, age, exclusions) is a boolean column on that one-row-per-person table, so the
attrition (people left after each step) is one aggregate query and the members are one filter.

References
----------
Hripcsak G et al. (2015). Observational Health Data Sciences and Informatics (OHDSI).
Book of OHDSI (2021), ch. 10 "Defining Cohorts" (first exposure, prior observation, new users).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from follicle.study.events import Cdm, EventStore
from follicle.study.spec import CohortSpec, Criterion, RouteFilter, StudySpec, Window

FEMALE, MALE = 8532, 8507


def as_int(flag: ir.BooleanValue) -> ir.IntegerValue:
    """1/0 from a boolean, NULL as 0 (PostgreSQL cannot cast boolean to bigint)."""
    return ibis.ifelse(flag.fill_null(False), 1, 0).cast("int64")


@dataclass
class CompiledCohort:
    """A cohort as expressions: ``candidates`` (one row per person with an entry event, plus step
    flags) and ``members`` (the people passing every step)."""

    name: str
    candidates: ir.Table
    steps: list[tuple[str, str]] = field(default_factory=list)  # (flag column, description)

    @property
    def members(self) -> ir.Table:
        t = self.candidates
        return t.filter(*[t[flag] for flag, _ in self.steps])

    def attrition_expr(self) -> ir.Table:
        """One row: the number of people left after each step (cumulative)."""
        t = self.candidates
        aggs = {"s_entry": t.count()}
        cond: ir.BooleanValue = ibis.literal(True)
        for flag, _ in self.steps:
            cond = cond & t[flag]
            aggs[flag] = as_int(cond).sum().fill_null(0)
        return t.aggregate(**aggs)


def in_window(event_date: ir.DateValue, anchor: ir.DateValue, window: Window) -> ir.BooleanValue:
    """``event_date`` within ``window`` days of ``anchor`` (ends inclusive, None open)."""
    preds: list[ir.BooleanValue] = []
    if window.start is not None:
        preds.append(event_date >= (anchor + ibis.interval(days=window.start)).cast("date"))
    if window.end is not None:
        preds.append(event_date <= (anchor + ibis.interval(days=window.end)).cast("date"))
    return ibis.and_(*preds) if preds else ibis.literal(True)


def route_filtered(events: ir.Table, route: RouteFilter | None, store: EventStore) -> ir.Table:
    """Entry exposures kept by the cohort's route filter."""
    if route is None:
        return events
    rid = events.route_concept_id
    unknown = rid.isnull() | (rid == 0)
    keep: ir.BooleanValue = ibis.literal(True)
    if route.include:
        keep = rid.isin(route.include).fill_null(False)
    if route.exclude:
        keep = keep & ~rid.isin(route.exclude).fill_null(False)
    keep = (keep | unknown) if route.keep_unknown else (keep & ~unknown)
    events = events.filter(keep)
    if route.exclude_concept_set:
        drop = store.events(route.exclude_concept_set).select("concept_id").distinct()
        events = events.filter(~events.concept_id.isin(drop.concept_id))
    return events


def _hits(candidates: ir.Table, events: ir.Table, window: Window, flag: str) -> ir.Table:
    """Persons of *candidates* with at least one event in *window* around their index date."""
    c = candidates.select(hp=candidates.person_id, hi=candidates.index_date)
    j = c.join(events.select("person_id", "start_date"), c.hp == events.person_id)
    j = j.filter(in_window(j.start_date, j.hi, window))
    return j.select(person_id=j.hp).distinct().mutate(**{flag: ibis.literal(True)})


def attach(t: ir.Table, other: ir.Table) -> ir.Table:
    """Left-join *other* (keyed by ``person_id``) onto *t*, keeping *t*'s rows and key column."""
    o = other.rename(_key="person_id")
    return t.left_join(o, t.person_id == o._key).drop("_key")


def _add_flag(candidates: ir.Table, hits: ir.Table, flag: str, *, negate: bool) -> ir.Table:
    joined = attach(candidates, hits)
    value = joined[flag].fill_null(False)
    return joined.mutate(**{flag: ~value if negate else value})


def cohort_end(entry: ir.Table, gap_days: int) -> ir.Table:
    """End of the first continuous exposure: entry events joined while the next starts within
    ``gap_days`` of the latest end so far. Returns person_id, cohort_end_date."""
    e = entry.select("person_id", "start_date", "end_date")
    running = ibis.window(group_by=e.person_id, order_by=[e.start_date, e.end_date], preceding=None, following=0)
    e = e.mutate(run_end=e.end_date.max().over(running))
    ordered = ibis.window(group_by=e.person_id, order_by=[e.start_date, e.end_date])
    e = e.mutate(prev_end=e.run_end.lag().over(ordered))
    brk = as_int(e.prev_end.notnull() & (e.start_date > (e.prev_end + ibis.interval(days=gap_days)).cast("date")))
    e = e.mutate(brk=brk)
    cum = ibis.window(group_by=e.person_id, order_by=[e.start_date, e.end_date], preceding=None, following=0)
    e = e.mutate(era=e.brk.sum().over(cum))
    first = e.filter(e.era == 0)
    return first.group_by("person_id").aggregate(cohort_end_date=first.run_end.max())


def compile_cohort(name: str, spec: StudySpec, cdm: Cdm, store: EventStore, done: dict[str, CompiledCohort]) -> CompiledCohort:
    """Compile cohort *name* (and, first, any cohort it refers to) into a :class:`CompiledCohort`."""
    if name in done:
        return done[name]
    cs: CohortSpec = spec.cohorts[name]
    for crit in cs.require + cs.exclude:
        if crit.cohort:
            compile_cohort(crit.cohort, spec, cdm, store, done)

    entry = store.persist(route_filtered(store.events(cs.entry.concept_set), cs.route, store), f"entry_{name}")
    first = entry.group_by("person_id").aggregate(index_date=entry.start_date.min())
    first = store.persist(first, f"first_{name}")
    ends = cohort_end(entry, cs.exposure_gap_days)
    t = attach(first, ends)

    op = cdm.table("observation_period")
    op = op.select(
        op_person=op.person_id.cast("int64"),
        op_start=op.observation_period_start_date.cast("date"),
        op_end=op.observation_period_end_date.cast("date"),
    )
    j = first.join(op, [first.person_id == op.op_person, op.op_start <= first.index_date, op.op_end >= first.index_date])
    obs = j.group_by(j.person_id).aggregate(obs_start=j.op_start.min(), obs_end=j.op_end.max())
    t = attach(t, obs)

    person = cdm.table("person")
    person = person.select(
        pp=person.person_id.cast("int64"),
        year_of_birth=person.year_of_birth.cast("int64"),
        gender_concept_id=person.gender_concept_id.cast("int64"),
    )
    t = attach(t, person.rename(person_id="pp"))
    t = t.mutate(
        age=t.index_date.year().cast("int64") - t.year_of_birth,
        cohort_end_date=ibis.coalesce(t.cohort_end_date, t.index_date),
    )

    steps: list[tuple[str, str]] = []

    def step(flag: str, description: str, value: ir.BooleanValue) -> None:
        nonlocal t
        t = t.mutate(**{flag: value.fill_null(False)})
        steps.append((flag, description))

    step("s_person", "has a person record", t.year_of_birth.notnull())
    step("s_observed", "entry event within an observation period", t.obs_start.notnull())
    prior_days = max(cs.prior_observation_days, cs.washout_days or 0)
    if prior_days:
        step(
            "s_prior_obs",
            f">= {prior_days} days of observation before index",
            t.index_date.delta(t.obs_start, unit="day") >= prior_days,
        )
    if cs.washout_days is not None:
        washout = Window(start=-cs.washout_days, end=-1)
        for i, set_name in enumerate(cs.washout_concept_sets or [cs.entry.concept_set]):
            flag = f"s_washout_{i}"
            t = _add_flag(t, _hits(first, store.events(set_name), washout, flag), flag, negate=True)
            steps.append((flag, f"no {set_name} in the {cs.washout_days} days before index (new user)"))
    if cs.min_exposures is not None:
        me = cs.min_exposures
        c = first.select(hp=first.person_id, hi=first.index_date)
        j = c.join(entry.select("person_id", "start_date"), c.hp == entry.person_id)
        j = j.filter(in_window(j.start_date, j.hi, me.window))
        counts = j.group_by(person_id=j.hp).aggregate(n_exp=j.start_date.nunique())
        t = attach(t, counts)
        w = me.window
        step(
            "s_min_exposures",
            f">= {me.count} exposures (distinct days) from day {w.start} to {'end' if w.end is None else w.end}",
            t.n_exp.fill_null(0) >= me.count,
        )
        t = t.drop("n_exp")
    for i, crit in enumerate(cs.require):
        flag = f"s_require_{i}"
        t = _add_flag(t, _hits(first, _criterion_events(crit, store, done), crit.window, flag), flag, negate=False)
        steps.append((flag, f"has {_criterion_label(crit)} {_window_label(crit.window)}"))
    if cs.age is not None:
        cond: ir.BooleanValue = ibis.literal(True)
        if cs.age.min is not None:
            cond = cond & (t.age >= cs.age.min)
        if cs.age.max is not None:
            cond = cond & (t.age <= cs.age.max)
        step("s_age", f"age at index {cs.age.min if cs.age.min is not None else 0}-{cs.age.max if cs.age.max is not None else 'any'}", cond)
    for i, crit in enumerate(cs.exclude):
        flag = f"s_exclude_{i}"
        t = _add_flag(t, _hits(first, _criterion_events(crit, store, done), crit.window, flag), flag, negate=True)
        steps.append((flag, f"no {_criterion_label(crit)} {_window_label(crit.window)}"))
    compiled = CompiledCohort(name=name, candidates=store.persist(t, f"cohort_{name}"), steps=steps)
    done[name] = compiled
    return compiled


def _criterion_events(crit: Criterion, store: EventStore, done: dict[str, CompiledCohort]) -> ir.Table:
    if crit.concept_set:
        return store.events(crit.concept_set)
    m = done[crit.cohort].members  # type: ignore[index]
    return m.select(person_id=m.person_id, start_date=m.index_date)


def _criterion_label(crit: Criterion) -> str:
    return crit.concept_set if crit.concept_set else f"membership of cohort {crit.cohort}"


def _window_label(w: Window) -> str:
    lo = "any time" if w.start is None else f"day {w.start}"
    hi = "any time after" if w.end is None else f"day {w.end}"
    return f"from {lo} to {hi} relative to index"
