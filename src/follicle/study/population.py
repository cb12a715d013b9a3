"""The study population of a comparison: the analysis table, attrition and sparse covariates.

Everything is computed in the database; only the analysis table (one row per person), the sparse
covariates of those people and the attrition counts are pulled into Python. Columns are
documented in docs/analysis-table.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from follicle.study.cohorts import (
    FEMALE,
    MALE,
    CompiledCohort,
    attach,
    between,
    compile_cohort,
    in_window,
    window_bounds,
)
from follicle.study.events import Cdm, EventStore, generic_events
from follicle.study.spec import StudySpec
from follicle.vocab.resolve import (
    ResolvedConceptSet,
    VocabularySource,
    prefetch_concept_sets,
    resolve_concept_set,
)

#: covariate_id = concept_id * 1000 + analysis id, in the style of OHDSI FeatureExtraction.
ANALYSIS_IDS = {"condition": 102, "drug": 402}
FAR_FUTURE = ibis.date(9999, 12, 31)


@dataclass
class Population:
    """What the statistics need for one comparison.

    Attributes
    ----------
    table : one row per person (see docs/analysis-table.md).
    attrition : cohort, step_index, step, description, persons.
    sparse_covariates : person_id, covariate_id, value (long format).
    covariate_ref : covariate_id, covariate_name, analysis, concept_id.
    """

    comparison: str
    table: pd.DataFrame
    attrition: pd.DataFrame
    sparse_covariates: pd.DataFrame
    covariate_ref: pd.DataFrame
    outcomes: list[str]
    negative_controls: list[str]
    warnings: list[str] = field(default_factory=list)


class StudySession:
    """A study bound to one CDM: resolved concept sets, event tables and compiled cohorts.

    Use as a context manager so temporary tables are dropped.
    """

    def __init__(self, spec: StudySpec, con: Any, *, database: Any = None, materialize: bool = True,
                 bundled: dict[str, pd.DataFrame] | None = None) -> None:
        self.spec = spec
        self.cdm = Cdm(con, database=database)
        self.vocab = VocabularySource(con, database=database, bundled=bundled)
        prefetch_concept_sets(spec.concept_sets, self.vocab)
        self.resolved: dict[str, ResolvedConceptSet] = {
            name: resolve_concept_set(name, cs, self.vocab) for name, cs in spec.concept_sets.items()
        }
        needed = {n for n, rs in self.resolved.items() if rs.domain is not None and self.cdm.has(_table_of(rs.domain))}
        entry_sets = {c.entry.concept_set for c in spec.cohorts.values()} & needed
        self.store = EventStore(self.cdm, self.resolved, needed, materialize=materialize, entry_sets=entry_sets)
        self.cohorts: dict[str, CompiledCohort] = {}
        self.populations: dict[str, tuple[ir.Table, list[dict[str, Any]]]] = {}
        self._attrition: dict[str, pd.DataFrame] = {}

    @property
    def warnings(self) -> list[str]:
        return [w for rs in self.resolved.values() for w in rs.warnings]

    def cohort(self, name: str) -> CompiledCohort:
        return compile_cohort(name, self.spec, self.cdm, self.store, self.cohorts)

    def attrition(self, name: str) -> pd.DataFrame:
        """People left after each step of cohort *name* (one query, once per session)."""
        if name not in self._attrition:
            c = self.cohort(name)
            row = self.cdm.con.execute(c.attrition_expr()).iloc[0]
            labels = [("s_entry", f"first event of {self.spec.cohorts[name].entry.concept_set}")] + c.steps
            self._attrition[name] = pd.DataFrame(
                [{"cohort": name, "step_index": i, "step": f.removeprefix("s_"), "description": d, "persons": int(row[f])}
                 for i, (f, d) in enumerate(labels)]
            )
        return self._attrition[name].copy()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _table_of(domain: str) -> str:
    from follicle.study.events import DOMAINS

    return DOMAINS[domain].table


def comparison_members(session: StudySession, comparison: str) -> tuple[ir.Table, list[dict[str, Any]]]:
    """Target and comparator members with ``treatment``, after the overlap rule; attrition rows as
    unevaluated expressions (label, description, count expression)."""
    comp = session.spec.comparisons[comparison]
    cols = ["person_id", "index_date", "cohort_end_date", "obs_end", "year_of_birth", "gender_concept_id", "age"]
    t = session.cohort(comp.target).members.select(*cols)
    c = session.cohort(comp.comparator).members.select(*cols)
    t_in_c = t.person_id.isin(c.person_id)
    c_in_t = c.person_id.isin(t.person_id)
    if comp.overlap == "exclude":
        t2, c2 = t.filter(~t_in_c), c.filter(~c_in_t)
        desc = "people in both cohorts removed"
    else:
        ci = c.select(ck=c.person_id, cidx=c.index_date)
        ti = t.select(tk=t.person_id, tidx=t.index_date)
        tj = t.left_join(ci, t.person_id == ci.ck)
        t2 = tj.filter(tj.cidx.isnull() | (tj.index_date < tj.cidx)).select(*cols)
        cj = c.left_join(ti, c.person_id == ti.tk)
        c2 = cj.filter(cj.tidx.isnull() | (cj.index_date < cj.tidx)).select(*cols)
        desc = "people in both cohorts kept in the one entered first (same-day entries removed)"
    members = t2.mutate(treatment=ibis.literal(1, "int64"), cohort=ibis.literal(comp.target)).union(
        c2.mutate(treatment=ibis.literal(0, "int64"), cohort=ibis.literal(comp.comparator))
    )
    steps = [
        {"step": "target", "description": f"members of {comp.target}", "expr": t.count()},
        {"step": "comparator", "description": f"members of {comp.comparator}", "expr": c.count()},
        {"step": "in_both", "description": "people in both cohorts", "expr": t.filter(t_in_c).count()},
        {"step": "overlap_target", "description": f"target after overlap rule: {desc}", "expr": None},
        {"step": "overlap_comparator", "description": f"comparator after overlap rule: {desc}", "expr": None},
    ]
    return members, steps


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
    anchor = {"index": m.index_date, "cohort_end": m.cohort_end_date}
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


def _event_columns(session: StudySession, pop: ir.Table, outcomes: list[str], covariates: list[str]) -> list[ir.Table]:
    """Per-person event columns of *pop*, per domain: ``<o>_date`` (first event of outcome *o* in the
    time at risk), ``<o>_prior`` (an event before the time at risk, within the outcome's lookback)
    and ``cov_<c>`` (covariate set *c* occurs in the covariate window).

    Two aggregates: events are first summarised per person and code (first day in the time at risk,
    days since the last event before it, any event in the covariate window), then per person and
    concept set over the few codes of each set, which is much cheaper than testing every event
    against every set.
    """
    spec = session.spec
    lo, hi = window_bounds(pop.index_date, spec.covariates.window)
    keys: dict[str, ir.Value] = {"ts": pop.tar_start, "te": pop.tar_end}
    if covariates:
        keys |= {k: v for k, v in (("clo", lo), ("chi", hi)) if v is not None}
    p = pop.select(k=pop.person_id, **keys)
    wanted = [(n, spec.outcomes[n].concept_set) for n in outcomes] + [(None, c) for c in covariates]
    parts = []
    for events, codes, cols in session.store.coded([set_name for _, set_name in wanted]):
        j = p.join(events.select("person_id", "code_id", "start_date"), p.k == events.person_id)
        summary: dict[str, ir.Value] = {}
        if outcomes:
            summary["first_in_tar"] = j.start_date.min(where=(j.start_date >= j.ts) & (j.start_date <= j.te))
            summary["days_before"] = j.ts.delta(j.start_date, unit="day").min(where=j.start_date < j.ts)
        if covariates:
            summary["in_window"] = between(j.start_date, j.clo if lo is not None else None, j.chi if hi is not None else None).any()
        per_code = j.group_by([j.k, j.code_id]).aggregate(**summary)
        pc = per_code.join(codes, per_code.code_id == codes._code)
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
            aggs[f"{outcome}_date"] = pc.first_in_tar.min(where=hit)
            aggs[f"{outcome}_prior"] = (hit & prior).any()
        parts.append(pc.group_by(person_id=pc.k).aggregate(**aggs))
    return parts


def build_population(spec: StudySpec, con: Any, comparison: str, *, database: Any = None,
                     session: StudySession | None = None, materialize: bool = True,
                     outcomes: list[str] | None = None) -> Population:
    """Build the analysis table, attrition and sparse covariates of *comparison* in the CDM behind *con*.

    Parameters
    ----------
    spec : the study.
    con : Ibis backend holding the CDM (see :func:`follicle.cdm.connect.connect`).
    comparison : key of ``spec.comparisons``.
    database : schema of the CDM tables, if not the default.
    session : an open :class:`StudySession` to reuse across comparisons (else one is opened and closed).
    outcomes : the outcomes whose columns to add (default: every outcome and negative control of the
        comparison; ``[]`` for none, then add them one by one with :func:`outcome_columns`).
    """
    if comparison not in spec.comparisons:
        raise KeyError(f"comparison {comparison!r} is not in the spec (have: {', '.join(spec.comparisons)})")
    own = session is None
    session = session or StudySession(spec, con, database=database, materialize=materialize)
    try:
        return _build(session, comparison, outcomes)
    finally:
        if own:
            session.close()


def population_steps(session: StudySession, comparison: str) -> tuple[ir.Table, list[dict[str, Any]]]:
    """The comparison's members with their time at risk (persisted once per session) and the
    attrition steps as unevaluated count expressions."""
    if comparison not in session.populations:
        members, steps = comparison_members(session, comparison)
        pop = time_at_risk(session, members)
        pop = session.store.persist(pop.mutate(has_tar=pop.tar_end >= pop.tar_start), f"population_{comparison}")
        steps[3]["expr"] = pop.count(where=pop.treatment == 1)
        steps[4]["expr"] = pop.count(where=pop.treatment == 0)
        steps.append({"step": "time_at_risk", "description": "people with time at risk (both arms)",
                      "expr": pop.count(where=pop.has_tar)})
        session.populations[comparison] = (pop.filter(pop.has_tar).drop("has_tar"), steps)
    return session.populations[comparison]


def step_counts(session: StudySession, steps: list[dict[str, Any]]) -> list[int]:
    """The count expressions of *steps* (see :func:`population_steps`) evaluated in one query."""
    if not steps:
        return []
    row = steps[0]["expr"].name("n0").as_table()
    for i, s in enumerate(steps[1:], start=1):
        row = row.cross_join(s["expr"].name(f"n{i}").as_table())
    values = session.cdm.con.execute(row).iloc[0]
    return [int(values[f"n{i}"]) for i in range(len(steps))]


def outcome_columns(session: StudySession, comparison: str, names: list[str]) -> pd.DataFrame:
    """``person_id`` and ``<name>_event``, ``<name>_days``, ``<name>_prior`` of each outcome in *names*,
    for the population of *comparison* (rows ordered by person_id, as the analysis table)."""
    pop, _ = population_steps(session, comparison)
    wide = attach(pop, *_event_columns(session, pop, names, []))
    raw = session.cdm.con.to_pyarrow(wide.select(
        "person_id", followup_days=_day(wide.tar_end, wide), **_outcome_raw(wide, names)).order_by("person_id"))
    return pd.DataFrame({"person_id": _ints(raw["person_id"])} | _outcome_frame(raw, names))


def _day(date: ir.DateValue, wide: ir.Table) -> ir.IntegerValue:
    """Days from the index date to *date* (the analysis table's time origin)."""
    return date.delta(wide.index_date, unit="day")


def _outcome_raw(wide: ir.Table, names: list[str]) -> dict[str, ir.Value]:
    """Per outcome: the day of the first event in the time at risk (NULL when none) and the prior flag."""
    return {c: v for n in names for c, v in ((f"{n}_day", _day(wide[f"{n}_date"], wide)), (f"{n}_prior", wide[f"{n}_prior"]))}


def _ints(values: pa.ChunkedArray, fill: Any = None) -> np.ndarray:
    """An Arrow column (integer or boolean) as int64, NULL replaced by *fill* (a number or an array)."""
    values = values.cast(pa.int64())
    if fill is not None:
        values = pc.coalesce(values, fill)
    return values.to_numpy()


def _outcome_frame(raw: pa.Table, names: list[str]) -> dict[str, np.ndarray]:
    """``<o>_event``, ``<o>_days``, ``<o>_prior`` from the day of the first event in the time at risk
    (NULL when none), the end of follow-up and the prior-event flag."""
    out: dict[str, np.ndarray] = {}
    followup = raw["followup_days"].cast(pa.int64())
    for n in names:
        day = raw[f"{n}_day"]
        out[f"{n}_event"] = _ints(day.is_valid())
        out[f"{n}_days"] = _ints(day, followup)
        out[f"{n}_prior"] = _ints(raw[f"{n}_prior"], 0)
    return out


def _build(session: StudySession, comparison: str, outcomes: list[str] | None = None) -> Population:
    spec, con = session.spec, session.cdm.con
    comp = spec.comparisons[comparison]
    attrition = pd.concat([session.attrition(comp.target), session.attrition(comp.comparator)], ignore_index=True)
    pop, steps = population_steps(session, comparison)
    for i, (s, n) in enumerate(zip(steps, step_counts(session, steps), strict=True)):
        attrition.loc[len(attrition)] = {"cohort": comparison, "step_index": i, "step": s["step"],
                                        "description": s["description"], "persons": n}

    outcome_names = list(dict.fromkeys(comp.outcomes + comp.negative_controls)) if outcomes is None else outcomes
    cov_sets = list(spec.covariates.concept_sets)
    wide = attach(pop, *_event_columns(session, pop, outcome_names, cov_sets))
    raw = con.to_pyarrow(wide.select(
        "person_id", "treatment", "cohort", "index_date", "age", "gender_concept_id", "year_of_birth",
        *[f"cov_{n}" for n in cov_sets], tar_start_day=_day(wide.tar_start, wide),
        followup_days=_day(wide.tar_end, wide), **_outcome_raw(wide, outcome_names),
    ).order_by("person_id"))
    sparse, ref = _sparse_covariates(session, pop, comp)
    table = _analysis_frame(raw, spec.covariates.demographics, cov_sets, outcome_names)
    return Population(comparison, table, attrition, sparse, ref, list(comp.outcomes), list(comp.negative_controls), session.warnings)


def _analysis_frame(raw: pa.Table, demographics: bool, cov_sets: list[str], outcomes: list[str]) -> pd.DataFrame:
    """The analysis table (docs/analysis-table.md) from the per-person columns the database returns
    (Arrow): backend-independent dtypes (int64 counts and flags, datetime64 index dates, str labels)."""
    gender = _ints(raw["gender_concept_id"], 0)
    age = _ints(raw["age"])
    out: dict[str, Any] = {
        "person_id": _ints(raw["person_id"]), "treatment": _ints(raw["treatment"]),
        "cohort": raw["cohort"].to_pandas().astype(str),
        "index_date": raw["index_date"].cast(pa.timestamp("s")).to_numpy(), "age": age,
        "sex": np.select([gender == FEMALE, gender == MALE], ["F", "M"], "U"),
        "year_of_birth": _ints(raw["year_of_birth"]),
    }
    if demographics:
        out["cov_age"] = age
        out["cov_female"] = (gender == FEMALE).astype("int64")
    out |= {f"cov_{n}": _ints(raw[f"cov_{n}"], 0) for n in cov_sets}
    out["tar_start_day"] = _ints(raw["tar_start_day"])
    out["followup_days"] = _ints(raw["followup_days"])
    out |= _outcome_frame(raw, outcomes)
    return pd.DataFrame(out)


def _sparse_covariates(session: StudySession, pop: ir.Table, comp: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    cov = session.spec.covariates
    empty = pd.DataFrame({"person_id": pd.Series(dtype="int64"), "covariate_id": pd.Series(dtype="int64"),
                          "value": pd.Series(dtype="float64")})
    ref_empty = pd.DataFrame({"covariate_id": pd.Series(dtype="int64"), "covariate_name": pd.Series(dtype="str"),
                              "analysis": pd.Series(dtype="str"), "concept_id": pd.Series(dtype="int64")})
    parts = []
    excluded: set[int] = set()
    for cohort in (comp.target, comp.comparator):
        excluded |= session.resolved[session.spec.cohorts[cohort].entry.concept_set].concept_ids
    for domain, wanted in (("condition", cov.all_conditions), ("drug", cov.all_drugs)):
        if not wanted or not session.cdm.has(_table_of(domain)):
            continue
        ev = generic_events(session.cdm, domain).select("person_id", "concept_id", "start_date")
        p = pop.select(k=pop.person_id, hi=pop.index_date)
        j = p.join(ev, p.k == ev.person_id)
        keep = in_window(j.start_date, j.hi, cov.window) & (j.concept_id != 0)
        if domain == "drug" and excluded:
            keep = keep & ~j.concept_id.isin(sorted(excluded))
        rows = j.filter(keep).select(person_id=j.k, concept_id=j.concept_id).distinct()
        parts.append(rows.mutate(covariate_id=rows.concept_id * 1000 + ANALYSIS_IDS[domain], analysis=ibis.literal(domain)))
    if not parts:
        return empty, ref_empty
    long = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
    frame = session.cdm.con.execute(long.order_by(["person_id", "covariate_id"]))
    sparse = pd.DataFrame({"person_id": frame["person_id"].astype("int64"), "covariate_id": frame["covariate_id"].astype("int64"),
                           "value": 1.0})
    ref = frame[["covariate_id", "analysis", "concept_id"]].drop_duplicates("covariate_id").astype({"covariate_id": "int64", "concept_id": "int64"})
    names = _concept_names(session.vocab, set(ref["concept_id"].tolist()))
    ref["covariate_name"] = [f"{a} {names.get(c, f'concept {c}')}" for a, c in zip(ref["analysis"], ref["concept_id"])]
    ref = ref[["covariate_id", "covariate_name", "analysis", "concept_id"]].sort_values("covariate_id").reset_index(drop=True)
    return sparse, ref


def _concept_names(vocab: VocabularySource, ids: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for concept in vocab.sources("concept"):
        todo = sorted(ids - set(out))
        if not todo:
            break
        frame = vocab.con.execute(concept.filter(concept.concept_id.isin(todo)).select("concept_id", "concept_name"))
        out.update({int(k): str(v) for k, v in zip(frame["concept_id"], frame["concept_name"])})
    return out
