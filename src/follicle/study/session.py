"""A study bound to one CDM: resolved concept sets, event store, cohorts and comparison populations.

The work is shared across comparisons. Each cohort is compiled once. The *study table* is built
once: every member of a cohort used by some comparison, with its time at risk and every outcome
and covariate column. A comparison's population is then its members after the overlap rule,
joined to that table. Only aggregates and the analysis tables leave the database.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Self

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from follicle.study.cohorts import (
    CompiledCohort,
    attach,
    between,
    compile_cohort,
    window_bounds,
)
from follicle.study.collector import full_collections_deferred
from follicle.study.coverage import ConceptSetReport, concept_set_report
from follicle.study.events import DOMAINS, Cdm, EventStore, min_where
from follicle.study.spec import StudySpec
from follicle.vocab.resolve import (
    ResolvedConceptSet,
    VocabularySource,
    prefetch_concept_sets,
    resolve_concept_set,
)

FAR_FUTURE = ibis.date(9999, 12, 31)
#: the keys of the study table: a person can be a member of several cohorts
KEYS = ("cohort", "person_id")
#: member columns carried from a cohort into the study table
MEMBER_COLUMNS = ("person_id", "index_date", "cohort_end_date", "obs_end", "year_of_birth", "gender_concept_id", "age")


class StudySession:
    """A study bound to one CDM: resolved concept sets, event tables, compiled cohorts and the
    study table, each computed once.

    Use as a context manager so temporary tables are dropped.

    Parameters
    ----------
    spec : StudySpec
        The study.
    con : ibis.backends.BaseBackend
        The CDM.
    database : str, optional
        Schema of the CDM tables, if not the default.
    materialize : bool
        Keep intermediate event tables as temporary tables (faster when sets are reused).
    bundled : dict, optional
        Stand-in vocabulary tables (None: the bundled subset).

    Attributes
    ----------
    resolved : dict of str to ResolvedConceptSet
        Every concept set as concept ids, with the route each came by.
    warnings : list of str
        What concept-set resolution could not do, or did by a fallback.
    """

    @full_collections_deferred
    def __init__(self, spec: StudySpec, con: Any, *, database: Any = None, materialize: bool = True,
                 bundled: dict[str, pd.DataFrame] | None = None) -> None:
        self.spec = spec
        self.cdm = Cdm(con, database=database)
        self.vocab = VocabularySource(con, database=database, bundled=bundled)
        prefetch_concept_sets(spec.concept_sets, self.vocab)
        self.resolved: dict[str, ResolvedConceptSet] = {
            name: resolve_concept_set(name, cs, self.vocab) for name, cs in spec.concept_sets.items()
        }
        needed = {n for n, rs in self.resolved.items() if rs.domain is not None and self.cdm.has(DOMAINS[rs.domain].table)}
        entry_sets = {c.entry.concept_set for c in spec.cohorts.values() if c.entry} & needed
        if any(c.atlas for c in spec.cohorts.values()):
            entry_sets = None  # an ATLAS cohort's people are not known before it runs: keep everyone's events
        self.store = EventStore(self.cdm, self.resolved, needed, materialize=materialize, entry_sets=entry_sets)
        self.cohorts: dict[str, CompiledCohort] = {}
        self.populations: dict[str, tuple[pa.Table, list[dict[str, str]], list[int]]] = {}
        self._attrition: dict[str, pd.DataFrame] = {}
        self._study: ir.Table | None = None
        self._report: ConceptSetReport | None = None

    @property
    def warnings(self) -> list[str]:
        """What concept-set resolution could not do, or did by a fallback."""
        return [w for rs in self.resolved.values() for w in rs.warnings]

    @full_collections_deferred
    def concept_set_report(self) -> ConceptSetReport:
        """How each concept set was resolved (concepts, rows and persons per route) and the event
        rows it could be missing (see :mod:`follicle.study.coverage`); computed once."""
        if self._report is None:
            self._report = concept_set_report(self)
        return self._report

    @full_collections_deferred
    def cohort(self, name: str) -> CompiledCohort:
        return compile_cohort(name, self.spec, self.cdm, self.store, self.cohorts)

    @full_collections_deferred
    def attrition(self, name: str) -> pd.DataFrame:
        """People left after each step of cohort *name* (once per session; see :meth:`attritions`)."""
        return self.attritions([name])[0]

    @full_collections_deferred
    def attritions(self, names: list[str]) -> list[pd.DataFrame]:
        """People left after each step of each cohort of *names*: those not yet counted in one
        query (one row: every cohort's one-row aggregate side by side), once per session."""
        todo = [n for n in dict.fromkeys(names) if n not in self._attrition]
        if todo:
            compiled = [self.cohort(n) for n in todo]
            parts = []
            for i, c in enumerate(compiled):
                a = c.attrition_expr()
                parts.append(a.select(**{f"c{i}_{f}": a[f] for f in a.columns}))
            row = self.cdm.con.execute(functools.reduce(lambda a, b: a.cross_join(b), parts)).iloc[0]
            for i, (name, c) in enumerate(zip(todo, compiled, strict=True)):
                entry = self.spec.cohorts[name].entry
                first = f"first event of {entry.concept_set}" if entry else "first entry of the ATLAS definition"
                labels = [("s_entry", first)] + c.steps
                self._attrition[name] = pd.DataFrame(
                    [{"cohort": name, "step_index": k, "step": f.removeprefix("s_"), "description": d,
                      "persons": int(row[f"c{i}_{f}"])} for k, (f, d) in enumerate(labels)]
                )
        return [self._attrition[n].copy() for n in names]

    @full_collections_deferred
    def study_table(self) -> ir.Table:
        """Members of every cohort used by a comparison (keys ``cohort``, ``person_id``; ``ck`` numbers the cohort) with their
        time at risk (``tar_start``, ``tar_end``, ``has_tar``), ``<o>_date`` and ``<o>_prior`` of every
        outcome of the spec and ``cov_<set>`` of every covariate set; persisted once."""
        if self._study is None:
            names = list(dict.fromkeys(n for c in self.spec.comparisons.values() for n in (c.target, c.comparator)))
            # ck: the cohort as a number, a cheaper grouping key than its name for the event aggregates
            parts = [self.cohort(n).members.select(*MEMBER_COLUMNS).mutate(cohort=ibis.literal(n, "string"), ck=ibis.literal(i, "int64"))
                     for i, n in enumerate(names)]
            members = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
            pop = time_at_risk(self, members)
            # CohortMethod's rule: at least min_days_at_risk days from start to end (end - start)
            min_days = self.spec.time_at_risk.min_days_at_risk
            pop = pop.mutate(has_tar=pop.tar_end.delta(pop.tar_start, unit="day") >= min_days)
            events = event_columns(self, pop.filter(pop.has_tar), list(self.spec.outcomes), list(self.spec.covariates.concept_sets))
            self._study = self.store.persist(attach(pop, *events, keys=("ck", "person_id")), "study")
        return self._study

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def comparison_members(session: StudySession, comparison: str) -> tuple[ir.Table, list[dict[str, str]]]:
    """Everyone in the target or the comparator cohort (``person_id``), flagged: ``in_t``, ``in_c``
    (a member of each), ``keep_t``, ``keep_c`` (kept in that arm by the overlap rule) and, for the
    kept, ``treatment`` and ``cohort`` (NULL for the others); and the attrition steps (``step``,
    ``description``) of the overlap rule, each a count of one of the flags."""
    comp = session.spec.comparisons[comparison]
    t = session.cohort(comp.target).members.select("person_id", t_index="index_date")
    c = session.cohort(comp.comparator).members.select("person_id", c_index="index_date")
    j = t.outer_join(c, "person_id")
    both = j.select(person_id=ibis.coalesce(j.person_id, j.person_id_right), t_index=j.t_index, c_index=j.c_index)
    in_t, in_c = both.t_index.notnull(), both.c_index.notnull()
    if comp.overlap == "exclude":
        keep_t, keep_c = in_t & ~in_c, in_c & ~in_t
        desc = "people in both cohorts removed"
    else:
        keep_t = in_t & (~in_c | (both.t_index < both.c_index))
        keep_c = in_c & (~in_t | (both.c_index < both.t_index))
        desc = "people in both cohorts kept in the one entered first (same-day entries removed)"
    keep_t, keep_c = keep_t.fill_null(False), keep_c.fill_null(False)
    arm = ibis.ifelse(keep_c, ibis.literal(comp.comparator, "string"), ibis.literal(None, "string"))
    flagged = both.select(
        "person_id", in_t=in_t, in_c=in_c, keep_t=keep_t, keep_c=keep_c,
        treatment=ibis.ifelse(keep_t, 1, 0).cast("int64"),
        cohort=ibis.ifelse(keep_t, ibis.literal(comp.target, "string"), arm),
    )
    steps = [
        {"step": "target", "description": f"members of {comp.target}"},
        {"step": "comparator", "description": f"members of {comp.comparator}"},
        {"step": "in_both", "description": "people in both cohorts"},
        {"step": "overlap_target", "description": f"target after overlap rule: {desc}"},
        {"step": "overlap_comparator", "description": f"comparator after overlap rule: {desc}"},
    ]
    min_days = session.spec.time_at_risk.min_days_at_risk
    steps.append({"step": "time_at_risk", "description": f"people with at least {min_days} day{'s' if min_days != 1 else ''} "
                  "at risk (end minus start of the time at risk; both arms)"})
    return flagged, steps


def comparison_rows(session: StudySession, comparison: str,
                    **columns: str | Callable[[ir.Table], ir.Value]) -> tuple[pa.Table, list[dict[str, str]], list[int]]:
    """One query for a comparison: everyone in either cohort with the flags of
    :func:`comparison_members` and ``has_tar``, plus *columns* (a column name, or a function
    giving an expression over the flagged people joined to the study table; NULL for those not
    kept); the attrition steps and the number of people after each, counted from the flags. Only
    the kept people with time at risk are returned, in ``person_id`` order."""
    flagged, steps = comparison_members(session, comparison)
    j = attach(flagged, session.study_table(), keys=KEYS)
    cols = {k: (j[v] if isinstance(v, str) else v(j)) for k, v in columns.items()}
    flags = ("in_t", "in_c", "keep_t", "keep_c", "has_tar")
    raw = session.cdm.con.to_pyarrow(j.select("person_id", *flags, **cols))
    raw = raw.sort_by("person_id")
    f = {k: pc.fill_null(raw[k], False) for k in flags}
    kept = pc.and_(pc.or_(f["keep_t"], f["keep_c"]), f["has_tar"])
    counts = [f["in_t"], f["in_c"], pc.and_(f["in_t"], f["in_c"]), f["keep_t"], f["keep_c"], kept]
    rows = raw.filter(kept).drop_columns(list(flags))
    return rows, steps, [int(pc.sum(pc.cast(v, pa.int64())).as_py() or 0) for v in counts]


def population(session: StudySession, comparison: str) -> ir.Table:
    """The comparison's population as an expression: its kept members with time at risk joined
    to the study table (for what must stay in the database, such as default covariates)."""
    flagged, _ = comparison_members(session, comparison)
    members = flagged.filter(flagged.keep_t | flagged.keep_c).select("person_id", "treatment", "cohort")
    pop = members.join(session.study_table(), list(KEYS))  # every member is in the study table
    return pop.filter(pop.has_tar).drop("has_tar", "ck")


def time_at_risk(session: StudySession, members: ir.Table) -> ir.Table:
    """Add ``tar_start`` and ``tar_end`` dates (censored as the spec says)."""
    tar = session.spec.time_at_risk
    m = members
    if tar.censor_at_death and session.cdm.has("death"):
        d = session.cdm.table("death")
        deaths = d.group_by(person_id=d.person_id.cast("int64")).aggregate(death_date=d.death_date.cast("date").min())
        m = attach(m, deaths)
    else:
        m = m.mutate(death_date=ibis.literal(None, "date"))
    anchor = {"index": m.index_date, "cohort_start": m.index_date, "cohort_end": m.cohort_end_date}
    start = (anchor[tar.start_anchor] + ibis.interval(days=tar.start_offset)).cast("date")
    end = (anchor[tar.end_anchor] + ibis.interval(days=tar.end_offset)).cast("date")
    bounds = [end]
    if tar.censor_at_observation_end:
        bounds.append(ibis.coalesce(m.obs_end, FAR_FUTURE))
    if tar.censor_at_death:
        bounds.append(ibis.coalesce(m.death_date, FAR_FUTURE))
    if tar.max_follow_up_days is not None:
        bounds.append((start + ibis.interval(days=tar.max_follow_up_days)).cast("date"))
    end = ibis.least(*bounds) if len(bounds) > 1 else end
    return m.mutate(tar_start=start, tar_end=end)


def event_columns(session: StudySession, pop: ir.Table, outcomes: list[str], covariates: list[str]) -> list[ir.Table]:
    """Per member of *pop* (keys ``ck``, ``person_id``), per domain: ``<o>_date`` (first event
    of outcome *o* in the time at risk), ``<o>_prior`` (an event before the time at risk, within the
    outcome's lookback) and ``cov_<c>`` (covariate set *c* occurs in the covariate window).

    Two aggregates: events are first summarised per member and code (first day in the time at
    risk, days since the last event before it, any event in the covariate window), then per member
    and concept set over the few codes of each set, which is much cheaper than testing every event
    against every set.
    """
    spec = session.spec
    lo, hi = window_bounds(pop.index_date, spec.covariates.window)
    keys: dict[str, ir.Value] = {"ts": pop.tar_start, "te": pop.tar_end}
    if covariates:
        keys |= {k: v for k, v in (("clo", lo), ("chi", hi)) if v is not None}
    p = pop.select("ck", "person_id", **keys)
    wanted = [(n, spec.outcomes[n].concept_set) for n in outcomes] + [(None, c) for c in covariates]
    parts = []
    for events, codes, cols in session.store.coded([set_name for _, set_name in wanted]):
        j = p.join(events.select("person_id", "code_id", "start_date"), "person_id")
        summary: dict[str, ir.Value] = {}
        if outcomes:
            summary["first_in_tar"] = min_where(j.start_date, (j.start_date >= j.ts) & (j.start_date <= j.te))
            summary["days_before"] = min_where(j.ts.delta(j.start_date, unit="day"), j.start_date < j.ts)
        if covariates:
            summary["in_window"] = between(j.start_date, j.clo if lo is not None else None, j.chi if hi is not None else None).any()
        per_code = j.group_by(["ck", "person_id", "code_id"]).aggregate(**summary)
        pc = per_code.join(codes, "code_id")
        aggs: dict[str, ir.Value] = {}
        for outcome, set_name in wanted:
            if set_name not in cols:
                continue
            hit = pc[cols[set_name]]
            if outcome is None:
                aggs[f"cov_{set_name}"] = (hit & pc.in_window).any()
                continue
            lb = spec.outcomes[outcome].prior_lookback_days
            prior = pc.days_before.notnull() if lb is None else pc.days_before <= lb
            aggs[f"{outcome}_date"] = min_where(pc.first_in_tar, hit)
            aggs[f"{outcome}_prior"] = (hit & prior).any()
        parts.append(pc.group_by(["ck", "person_id"]).aggregate(**aggs))
    return parts
