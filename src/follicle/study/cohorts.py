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


def window_bounds(anchor: ir.DateValue, window: Window) -> tuple[ir.DateValue | None, ir.DateValue | None]:
    """First and last day of *window* around *anchor* as dates (None for an open end)."""

    def shift(days: int) -> ir.DateValue:
        # date + interval is a timestamp in SQL engines: back to a date so comparisons stay date-typed
        return (anchor + ibis.interval(days=days)).cast("timestamp").cast("date")

    return (None if window.start is None else shift(window.start), None if window.end is None else shift(window.end))


def between(event_date: ir.DateValue, lo: ir.DateValue | None, hi: ir.DateValue | None) -> ir.BooleanValue:
    """``lo <= event_date <= hi``, an open (None) end unbounded."""
    preds = [p for p in (None if lo is None else event_date >= lo, None if hi is None else event_date <= hi) if p is not None]
    return ibis.and_(*preds) if preds else ibis.literal(True)


def in_window(event_date: ir.DateValue, anchor: ir.DateValue, window: Window) -> ir.BooleanValue:
    """``event_date`` within ``window`` days of ``anchor`` (ends inclusive, None open)."""
    return between(event_date, *window_bounds(anchor, window))


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


def attach(t: ir.Table, *others: ir.Table, keys: tuple[str, ...] = ("person_id",)) -> ir.Table:
    """Left-join each of *others* onto *t* in one join chain, on those of the *keys* columns it
    has, keeping *t*'s rows and columns and the others' other columns (flat SQL, no renaming)."""
    j = t
    for i, o in enumerate(others):
        j = j.left_join(o, [k for k in keys if k in o.columns], rname=f"{{name}}_key{i}")
    return j.drop(*[f"{k}_key{i}" for i, o in enumerate(others) for k in keys if k in o.columns])


def cohort_end(entry: ir.Table, gap_days: int, surveillance_days: int = 0) -> ir.Table:
    """End of the first continuous exposure: entry events joined while the next starts within
    ``gap_days`` of the latest end so far (the persistence window), plus ``surveillance_days``
    (ATLAS's custom era strategy). Returns person_id, cohort_end_date."""
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
    ends = first.group_by("person_id").aggregate(era_end=first.run_end.max())
    return ends.select("person_id", cohort_end_date=(ends.era_end + ibis.interval(days=surveillance_days)).cast("date"))


def compile_cohort(name: str, spec: StudySpec, cdm: Cdm, store: EventStore, done: dict[str, CompiledCohort]) -> CompiledCohort:
    """Compile cohort *name* (and, first, any cohort it refers to) into a :class:`CompiledCohort`.

    One query: each person's first entry exposure (and exposure count); for criteria over all
    history up to a day, each person's first event of the set (shared by all cohorts); one
    aggregate per domain for the other criteria; the observation period and the person. The step
    flags are columns of the result (see :func:`_steps`).
    """
    if name in done:
        return done[name]
    cs: CohortSpec = spec.cohorts[name]
    if cs.atlas is not None:
        from follicle.study.atlas.cohort import compile_atlas_cohort

        done[name] = compile_atlas_cohort(name, cs.atlas, cdm, store.persist)
        return done[name]
    for crit in cs.require + cs.exclude:
        if crit.cohort:
            compile_cohort(crit.cohort, spec, cdm, store, done)

    assert cs.entry is not None
    entry = route_filtered(store.events(cs.entry.concept_set), cs.route, store)
    checks = _checks(cs)
    # The index is the first entry exposure, so no entry exposure precedes it: a washout on the
    # entry set itself passes by construction, and an exposure count from day <= 0 to the end counts
    # every entry exposure; neither needs another pass over the exposures.
    vacuous = {c.flag for c in checks if c.kind == "washout" and c.criterion.concept_set == cs.entry.concept_set}
    me = cs.min_exposures
    count_all = me is not None and me.window.end is None and (me.window.start is None or me.window.start <= 0)
    firsts: dict[str, ir.Value] = {"index_date": entry.start_date.min()}
    if count_all:
        firsts["n_exp"] = entry.start_date.nunique()
    first = entry.group_by("person_id").aggregate(**firsts)
    # concept-set criteria over all history up to a day ("any time before index") need only each
    # person's first event of the set, kept once for every cohort of the study
    open_start = [(k, c) for k, c in enumerate(checks)
                  if c.flag not in vacuous and c.criterion.concept_set and c.criterion.window.start is None]
    windowed = [(k, c) for k, c in enumerate(checks) if c.flag not in vacuous and (k, c) not in open_start]
    # every other window, as per-person date bounds computed once with the index
    windows = {k: c.criterion.window for k, c in windowed}
    if me is not None and not count_all:
        windows[len(checks)] = me.window
    bounds = {}
    for k, w in windows.items():
        lo, hi = window_bounds(first.index_date, w)
        bounds |= {f"_lo{k}": lo, f"_hi{k}": hi}
    first = first.mutate(**{c: v for c, v in bounds.items() if v is not None})

    def window_of(j: ir.Table, k: int) -> tuple[ir.DateValue | None, ir.DateValue | None]:
        return tuple(j[c] if bounds[c] is not None else None for c in (f"_lo{k}", f"_hi{k}"))  # type: ignore[return-value]

    base = first.select("person_id", "index_date", *firsts.keys() - {"index_date"})
    parts: list[ir.Table] = []
    if me is not None and not count_all:
        ee = entry.select("person_id", "start_date")
        je = first.join(ee, "person_id")
        parts.append(je.group_by("person_id").aggregate(
            n_exp=je.start_date.nunique(where=between(je.start_date, *window_of(je, len(checks))))))
    first_col: dict[str, str] = {}
    if open_start:
        own = {c.criterion.concept_set for _, c in open_start}
        shared = {n for n in _open_start_sets(spec) if store.has(n)}
        for table, cols in store.first_dates(sorted(own | shared)):  # type: ignore[arg-type]
            parts.append(table)
            first_col |= cols
    # the other concept-set criteria, one pass over each domain's flagged events
    on_sets = [(k, c) for k, c in windowed if c.criterion.concept_set]
    for ev, cols in store.flagged([c.criterion.concept_set for _, c in on_sets]):  # type: ignore[misc]
        ev = ev.select("person_id", "start_date", *set(cols.values()))
        j = first.join(ev, "person_id")
        parts.append(j.group_by("person_id").aggregate(
            **{c.flag: (j[cols[c.criterion.concept_set]] & between(j.start_date, *window_of(j, k))).any()  # type: ignore[index]
               for k, c in on_sets if c.criterion.concept_set in cols}))
    # criteria on membership of another cohort
    for k, c in windowed:
        if c.criterion.cohort:
            m = done[c.criterion.cohort].members
            ev = m.select("person_id", start_date=m.index_date)
            j = first.join(ev, "person_id")
            parts.append(j.group_by("person_id").aggregate(**{c.flag: between(j.start_date, *window_of(j, k)).any()}))

    op = cdm.table("observation_period")
    op = op.select(
        op_person=op.person_id.cast("int64"),
        op_start=op.observation_period_start_date.cast("date"),
        op_end=op.observation_period_end_date.cast("date"),
    )
    j = base.join(op, [base.person_id == op.op_person, op.op_start <= base.index_date, op.op_end >= base.index_date])
    parts.append(j.group_by("person_id").aggregate(obs_start=j.op_start.min(), obs_end=j.op_end.max()))
    person = cdm.table("person")
    parts.append(person.select(
        person_id=person.person_id.cast("int64"),
        year_of_birth=person.year_of_birth.cast("int64"),
        gender_concept_id=person.gender_concept_id.cast("int64"),
    ))
    tar = spec.time_at_risk
    if "cohort_end" in (tar.start_anchor, tar.end_anchor):
        parts.append(cohort_end(entry, cs.exposure_gap_days, cs.surveillance_days))
    t = attach(base, *parts)
    t = t.mutate(**{c.flag: _seen_by(t[first_col[c.criterion.concept_set]], t.index_date, c.criterion.window)  # type: ignore[index]
                    for _, c in open_start})
    cohort_end_date = ibis.coalesce(t.cohort_end_date, t.index_date) if "cohort_end_date" in t.columns else t.index_date
    age = t.index_date.year().cast("int64") - t.year_of_birth
    hit = {c.flag: ibis.literal(False) if c.flag in vacuous else t[c.flag].fill_null(False) for c in checks}
    steps = _steps(cs, t, age, checks, hit)
    candidates = t.select(
        "person_id", "index_date", cohort_end_date=cohort_end_date, obs_start=t.obs_start, obs_end=t.obs_end,
        year_of_birth=t.year_of_birth, gender_concept_id=t.gender_concept_id, age=age,
        **{flag: value.fill_null(False) for flag, _, value in steps},
    )
    compiled = CompiledCohort(name=name, candidates=store.persist(candidates, f"cohort_{name}"),
                              steps=[(flag, description) for flag, description, _ in steps])
    done[name] = compiled
    return compiled


def _checks(cs: CohortSpec) -> list[_Check]:
    """The steps of *cs* that look for events in a window: washouts, requirements, exclusions."""
    checks: list[_Check] = []
    if cs.washout_days is not None:
        window = Window(start=-cs.washout_days, end=-1)
        for i, set_name in enumerate(cs.washout_concept_sets or [cs.entry.concept_set]):
            checks.append(_Check(f"s_washout_{i}", "washout", Criterion(concept_set=set_name, window=window),
                                 f"no {set_name} in the {cs.washout_days} days before index (new user)"))
    for i, crit in enumerate(cs.require):
        checks.append(_Check(f"s_require_{i}", "require", crit, f"has {_criterion_label(crit)} {_window_label(crit.window)}"))
    for i, crit in enumerate(cs.exclude):
        checks.append(_Check(f"s_exclude_{i}", "exclude", crit, f"no {_criterion_label(crit)} {_window_label(crit.window)}"))
    return checks


def _steps(cs: CohortSpec, t: ir.Table, age: ir.IntegerValue, checks: list[_Check],
           hit: dict[str, ir.BooleanValue]) -> list[tuple[str, str, ir.BooleanValue]]:
    """(flag, description, value) of every inclusion step of *cs* in attrition order; *hit* says,
    per check, whether the person has an event in its window."""
    steps: list[tuple[str, str, ir.BooleanValue]] = [
        ("s_person", "has a person record", t.year_of_birth.notnull()),
        ("s_observed", "entry event within an observation period", t.obs_start.notnull()),
    ]
    prior_days = max(cs.prior_observation_days, cs.washout_days or 0)
    if prior_days:
        steps.append(("s_prior_obs", f">= {prior_days} days of observation before index",
                      t.index_date.delta(t.obs_start, unit="day") >= prior_days))
    steps += [(c.flag, c.description, ~hit[c.flag]) for c in checks if c.kind == "washout"]
    if cs.min_exposures is not None:
        me, w = cs.min_exposures, cs.min_exposures.window
        steps.append(("s_min_exposures",
                      f">= {me.count} exposures (distinct days) from day {w.start} to {'end' if w.end is None else w.end}",
                      t.n_exp.fill_null(0) >= me.count))
    steps += [(c.flag, c.description, hit[c.flag]) for c in checks if c.kind == "require"]
    if cs.age is not None:
        cond: ir.BooleanValue = ibis.literal(True)
        if cs.age.min is not None:
            cond = cond & (age >= cs.age.min)
        if cs.age.max is not None:
            cond = cond & (age <= cs.age.max)
        lo, hi = cs.age.min if cs.age.min is not None else 0, cs.age.max if cs.age.max is not None else "any"
        steps.append(("s_age", f"age at index {lo}-{hi}", cond))
    steps += [(c.flag, c.description, ~hit[c.flag]) for c in checks if c.kind == "exclude"]
    return steps


def _open_start_sets(spec: StudySpec) -> list[str]:
    """Concept sets some cohort of *spec* requires or excludes over all history up to a day."""
    crits = [c for cs in spec.cohorts.values() for c in cs.require + cs.exclude]
    return sorted({c.concept_set for c in crits if c.concept_set and c.window.start is None})


def _seen_by(first_date: ir.DateValue, index_date: ir.DateValue, window: Window) -> ir.BooleanValue:
    """A person whose first event is *first_date* has one in *window* (open start) around index."""
    _, hi = window_bounds(index_date, window)
    return first_date.notnull() if hi is None else first_date <= hi


@dataclass(frozen=True)
class _Check:
    """An inclusion step that looks for events in a window: its flag column, kind, criterion and label."""

    flag: str
    kind: str  # washout | require | exclude
    criterion: Criterion
    description: str


def _criterion_label(crit: Criterion) -> str:
    return crit.concept_set if crit.concept_set else f"membership of cohort {crit.cohort}"


def _window_label(w: Window) -> str:
    lo = "any time" if w.start is None else f"day {w.start}"
    hi = "any time after" if w.end is None else f"day {w.end}"
    return f"from {lo} to {hi} relative to index"
