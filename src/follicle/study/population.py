"""The study population of a comparison: the analysis table, attrition and sparse covariates.

Everything is computed in the database; only the analysis table (one row per person), the sparse
covariates of those people and the attrition counts are pulled into Python. Columns are
documented in docs/analysis-table.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from follicle.study.cohorts import FEMALE, MALE, CompiledCohort, as_int, attach, compile_cohort, in_window
from follicle.study.events import Cdm, EventStore, generic_events
from follicle.study.spec import StudySpec
from follicle.vocab.resolve import ResolvedConceptSet, VocabularySource, resolve_concept_set

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
        self.resolved: dict[str, ResolvedConceptSet] = {
            name: resolve_concept_set(name, cs, self.vocab) for name, cs in spec.concept_sets.items()
        }
        needed = {n for n, rs in self.resolved.items() if rs.domain is not None and self.cdm.has(_table_of(rs.domain))}
        self.store = EventStore(self.cdm, self.resolved, needed, materialize=materialize)
        self.cohorts: dict[str, CompiledCohort] = {}
        self.populations: dict[str, tuple[ir.Table, list[dict[str, Any]]]] = {}

    @property
    def warnings(self) -> list[str]:
        return [w for rs in self.resolved.values() for w in rs.warnings]

    def cohort(self, name: str) -> CompiledCohort:
        return compile_cohort(name, self.spec, self.cdm, self.store, self.cohorts)

    def attrition(self, name: str) -> pd.DataFrame:
        """People left after each step of cohort *name* (one query)."""
        c = self.cohort(name)
        row = self.cdm.con.execute(c.attrition_expr()).iloc[0]
        labels = [("s_entry", f"first event of {self.spec.cohorts[name].entry.concept_set}")] + c.steps
        return pd.DataFrame(
            [{"cohort": name, "step_index": i, "step": f.removeprefix("s_"), "description": d, "persons": int(row[f])}
             for i, (f, d) in enumerate(labels)]
        )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> StudySession:
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
    both = t.filter(t_in_c).count()
    members = t2.mutate(treatment=ibis.literal(1, "int64"), cohort=ibis.literal(comp.target)).union(
        c2.mutate(treatment=ibis.literal(0, "int64"), cohort=ibis.literal(comp.comparator))
    )
    steps = [
        {"step": "target", "description": f"members of {comp.target}", "expr": t.count()},
        {"step": "comparator", "description": f"members of {comp.comparator}", "expr": c.count()},
        {"step": "in_both", "description": "people in both cohorts", "expr": both},
        {"step": "overlap_target", "description": f"target after overlap rule: {desc}", "expr": t2.count()},
        {"step": "overlap_comparator", "description": f"comparator after overlap rule: {desc}", "expr": c2.count()},
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


def _labelled_events(session: StudySession, sets: dict[str, str]) -> ir.Table:
    """Events of several concept sets in one table: person_id, start_date, label (the key of *sets*)."""
    parts = [
        session.store.events(cs).select("person_id", "start_date", label=ibis.literal(label))
        for label, cs in sets.items()
    ]
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def _outcome_table(session: StudySession, pop: ir.Table, names: list[str]) -> ir.Table:
    """One row per person with events: ``<o>_date`` (first event in the time at risk) and
    ``<o>_prior`` (1 when an event precedes the time at risk) for every outcome, in one join."""
    ev = _labelled_events(session, {n: session.spec.outcomes[n].concept_set for n in names})
    p = pop.select(k=pop.person_id, ts=pop.tar_start, te=pop.tar_end)
    j = p.join(ev, p.k == ev.person_id)
    in_tar = (j.start_date >= j.ts) & (j.start_date <= j.te)
    aggs = {}
    for n in names:
        before = (j.label == n) & (j.start_date < j.ts)
        lookback = session.spec.outcomes[n].prior_lookback_days
        if lookback is not None:
            before = before & (j.start_date >= (j.ts - ibis.interval(days=lookback)).cast("date"))
        aggs[f"{n}_date"] = j.start_date.min(where=(j.label == n) & in_tar)
        aggs[f"{n}_prior"] = as_int(before).max()
    return j.group_by(person_id=j.k).aggregate(**aggs)


def _covariate_table(session: StudySession, pop: ir.Table) -> ir.Table | None:
    """One row per person with any covariate event: ``cov_<set>`` = 1 when the set occurs in the window."""
    cov = session.spec.covariates
    if not cov.concept_sets:
        return None
    ev = _labelled_events(session, {n: n for n in cov.concept_sets})
    p = pop.select(k=pop.person_id, hi=pop.index_date)
    j = p.join(ev, p.k == ev.person_id)
    j = j.filter(in_window(j.start_date, j.hi, cov.window))
    return j.group_by(person_id=j.k).aggregate(**{f"cov_{n}": as_int(j.label == n).max() for n in cov.concept_sets})


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


def _population(session: StudySession, comparison: str) -> tuple[ir.Table, list[dict[str, Any]]]:
    """The comparison's members with their time at risk, persisted once per session, and the
    attrition steps as unevaluated count expressions."""
    if comparison not in session.populations:
        members, steps = comparison_members(session, comparison)
        pop = time_at_risk(session, members)
        has_tar = pop.tar_end >= pop.tar_start
        steps.append({"step": "time_at_risk", "description": "people with time at risk (both arms)",
                      "expr": pop.filter(has_tar).count()})
        session.populations[comparison] = (session.store.persist(pop.filter(has_tar), f"population_{comparison}"), steps)
    return session.populations[comparison]


def _outcome_exprs(wide: ir.Table, name: str) -> dict[str, Any]:
    d = wide[f"{name}_date"]
    return {f"{name}_event": as_int(d.notnull()),
            f"{name}_days": ibis.coalesce(d, wide.tar_end).delta(wide.index_date, unit="day"),
            f"{name}_prior": wide[f"{name}_prior"].fill_null(0)}


def outcome_columns(session: StudySession, comparison: str, names: list[str]) -> pd.DataFrame:
    """``person_id`` and ``<name>_event``, ``<name>_days``, ``<name>_prior`` of each outcome in *names*,
    for the population of *comparison* (rows ordered by person_id, as the analysis table)."""
    pop, _ = _population(session, comparison)
    wide = attach(pop, _outcome_table(session, pop, names))
    cols: dict[str, Any] = {"person_id": wide.person_id}
    for n in names:
        cols |= _outcome_exprs(wide, n)
    table = session.cdm.con.execute(wide.select(**cols).order_by("person_id"))
    return table.astype("int64").reset_index(drop=True)


def _build(session: StudySession, comparison: str, outcomes: list[str] | None = None) -> Population:
    spec, con = session.spec, session.cdm.con
    comp = spec.comparisons[comparison]
    attrition = pd.concat([session.attrition(comp.target), session.attrition(comp.comparator)], ignore_index=True)
    pop, steps = _population(session, comparison)
    for i, s in enumerate(steps):
        attrition.loc[len(attrition)] = {"cohort": comparison, "step_index": i, "step": s["step"],
                                        "description": s["description"], "persons": int(con.execute(s["expr"]))}

    outcome_names = list(dict.fromkeys(comp.outcomes + comp.negative_controls)) if outcomes is None else outcomes
    wide = pop
    covs = _covariate_table(session, pop)
    if covs is not None:
        wide = attach(wide, covs)
    if outcome_names:
        wide = attach(wide, _outcome_table(session, pop, outcome_names))
    cols: dict[str, Any] = {
        "person_id": wide.person_id, "treatment": wide.treatment, "cohort": wide.cohort,
        "index_date": wide.index_date, "age": wide.age,
        "sex": ibis.cases((wide.gender_concept_id == FEMALE, "F"), (wide.gender_concept_id == MALE, "M"), else_="U"),
        "year_of_birth": wide.year_of_birth,
    }
    if spec.covariates.demographics:
        cols["cov_age"] = wide.age
        cols["cov_female"] = as_int(wide.gender_concept_id == FEMALE)
    for n in spec.covariates.concept_sets:
        cols[f"cov_{n}"] = wide[f"cov_{n}"].fill_null(0)
    cols["tar_start_day"] = wide.tar_start.delta(wide.index_date, unit="day")
    cols["followup_days"] = wide.tar_end.delta(wide.index_date, unit="day")
    for n in outcome_names:
        cols |= _outcome_exprs(wide, n)
    wide = wide.select(**cols)
    ordered = list(cols)
    table = con.execute(wide.select(*ordered).order_by("person_id"))
    table = _tidy(table)
    sparse, ref = _sparse_covariates(session, pop, comp)
    return Population(comparison, table, attrition, sparse, ref, list(comp.outcomes), list(comp.negative_controls), session.warnings)


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Backend-independent dtypes: int64 counts and flags, datetime64 index dates, str labels."""
    table = table.copy()
    table["index_date"] = pd.to_datetime(table["index_date"])
    for col in table.columns:
        if col in ("cohort", "sex", "index_date"):
            continue
        table[col] = table[col].astype("int64")
    return table.reset_index(drop=True)


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
