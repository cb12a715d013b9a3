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
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from follicle.study.cohorts import FEMALE, MALE, in_window
from follicle.study.collector import full_collections_deferred
from follicle.study.covariates import covariate_names, default_covariates
from follicle.study.events import DOMAINS, generic_events
from follicle.study.session import StudySession, comparison_rows, population
from follicle.study.spec import StudySpec
from follicle.vocab.resolve import VocabularySource

__all__ = ["Population", "StudySession", "build_population", "outcome_columns"]

#: covariate_id = concept_id * 1000 + analysis id, in the style of OHDSI FeatureExtraction.
ANALYSIS_IDS = {"condition": 102, "drug": 402}


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


@full_collections_deferred
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
    materialize : keep intermediate event tables as temporary tables (when no *session* is given).
    outcomes : the outcomes whose columns to add (default: every outcome and negative control of the
        comparison; ``[]`` for none, then add them one by one with :func:`outcome_columns`).

    Returns
    -------
    Population
        ``table`` (one row per person: treatment, covariates, follow-up, outcome columns; see
        docs/analysis-table.md), ``attrition``, sparse covariates and warnings.
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


@full_collections_deferred
def outcome_columns(session: StudySession, comparison: str, names: list[str]) -> pd.DataFrame:
    """``person_id`` and ``<name>_event``, ``<name>_days``, ``<name>_prior`` of each outcome in *names*,
    for the population of *comparison* (rows ordered by person_id, as the analysis table)."""
    raw, _, _ = population_rows(session, comparison)
    session.populations.pop(comparison, None)  # the last use in a run: free the rows (asked again, they are queried again)
    return _frame({"person_id": _ints(raw["person_id"])} | _outcome_frame(raw, names))


def population_rows(session: StudySession, comparison: str) -> tuple[pa.Table, list[dict[str, str]], list[int]]:
    """The comparison's population as the database returns it (Arrow; one row per person, in
    ``person_id`` order: the analysis columns, day counts from the index date and both columns of
    every outcome of the spec), its attrition steps and their counts: one query, kept in the session
    until the outcome columns have been read."""
    if comparison not in session.populations:
        spec = session.spec
        columns: dict[str, Any] = {c: c for c in ("treatment", "cohort", "index_date", "age", "gender_concept_id", "year_of_birth")}
        columns |= {f"cov_{n}": f"cov_{n}" for n in spec.covariates.concept_sets}
        columns |= {"tar_start_day": lambda j: _day(j.tar_start, j), "followup_days": lambda j: _day(j.tar_end, j)}
        for n in spec.outcomes:
            columns |= {f"{n}_day": lambda j, n=n: _day(j[f"{n}_date"], j), f"{n}_prior": f"{n}_prior"}
        session.populations[comparison] = comparison_rows(session, comparison, **columns)
    return session.populations[comparison]


def _day(date: ir.DateValue, wide: ir.Table) -> ir.IntegerValue:
    """Days from the index date to *date* (the analysis table's time origin)."""
    return date.delta(wide.index_date, unit="day")


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
    spec = session.spec
    comp = spec.comparisons[comparison]
    attrition = pd.concat(session.attritions([comp.target, comp.comparator]), ignore_index=True)
    raw, steps, counts = population_rows(session, comparison)
    for i, (s, n) in enumerate(zip(steps, counts, strict=True)):
        attrition.loc[len(attrition)] = {"cohort": comparison, "step_index": i, "step": s["step"],
                                        "description": s["description"], "persons": n}

    outcome_names = list(dict.fromkeys(comp.outcomes + comp.negative_controls)) if outcomes is None else outcomes
    cov_sets = list(spec.covariates.concept_sets)
    sparse, ref, warnings = _sparse_covariates(session, comparison, comp)
    table = _analysis_frame(raw, spec.covariates.demographics, cov_sets, outcome_names)
    if outcomes is None:  # every outcome is in the table: the rows are not needed again
        session.populations.pop(comparison, None)
    return Population(comparison, table, attrition, sparse, ref, list(comp.outcomes), list(comp.negative_controls),
                      session.warnings + warnings)


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
    return _frame(out)


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A data frame of *columns* whose int64 columns are written straight into one block (pandas
    would otherwise stack them into one afterwards, a second copy of the whole table)."""
    ints = [k for k, v in columns.items() if isinstance(v, np.ndarray) and v.dtype == np.int64]
    block = np.empty((len(ints), len(next(iter(columns.values())))), dtype=np.int64)
    for i, k in enumerate(ints):
        block[i] = columns[k]
    df = pd.DataFrame(block.T, columns=ints, copy=False)
    for pos, (k, v) in enumerate(columns.items()):
        if k not in df.columns:
            df.insert(pos, k, v)
    return df


def _sparse_covariates(session: StudySession, comparison: str, comp: Any) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The sparse covariates (long format) of the comparison's people, their reference, warnings."""
    cov = session.spec.covariates
    wanted = [d for d, w in (("condition", cov.all_conditions), ("drug", cov.all_drugs)) if w and session.cdm.has(DOMAINS[d].table)]
    # the population as an expression, built only when some covariates are asked for
    pop = population(session, comparison) if cov.default_set is not None or wanted else None
    excluded: set[int] = set()
    for cohort in (comp.target, comp.comparator):
        entry = session.spec.cohorts[cohort].entry
        if entry is not None:  # (an ATLAS cohort's own drugs stay covariates)
            excluded |= session.resolved[entry.concept_set].concept_ids
    if cov.default_set is not None:
        for name in cov.default_set.excluded_concept_sets:
            excluded |= session.resolved[name].concept_ids
        found = default_covariates(session.cdm, session.vocab, pop, cov.default_set, excluded, persist=session.store.persist)
        rows = found.rows
        ids = np.sort(pc.unique(rows["covariate_id"]).to_numpy())
        sparse = pd.DataFrame({"person_id": rows["person_id"].to_numpy(), "covariate_id": rows["covariate_id"].to_numpy(),
                               "value": np.ones(rows.num_rows, np.float32)})
        concepts = set((ids // 1000).tolist()) - {0}
        ref = covariate_names(ids, _concept_names(session.vocab, concepts), cov.default_set)
        return sparse, ref, found.warnings
    empty = pd.DataFrame({"person_id": pd.Series(dtype="int64"), "covariate_id": pd.Series(dtype="int64"),
                          "value": pd.Series(dtype="float32")})
    ref_empty = pd.DataFrame({"covariate_id": pd.Series(dtype="int64"), "covariate_name": pd.Series(dtype="str"),
                              "analysis": pd.Series(dtype="str"), "concept_id": pd.Series(dtype="int64")})
    parts = []
    for domain in wanted:
        ev = generic_events(session.cdm, domain).select("person_id", "concept_id", "start_date")
        p = pop.select(k=pop.person_id, hi=pop.index_date)
        j = p.join(ev, p.k == ev.person_id)
        keep = in_window(j.start_date, j.hi, cov.window) & (j.concept_id != 0)
        if domain == "drug" and excluded:
            keep = keep & ~j.concept_id.isin(sorted(excluded))
        rows = j.filter(keep).select(person_id=j.k, concept_id=j.concept_id).distinct()
        parts.append(rows.mutate(covariate_id=rows.concept_id * 1000 + ANALYSIS_IDS[domain], analysis=ibis.literal(domain)))
    if not parts:
        return empty, ref_empty, []
    long = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
    frame = session.cdm.con.execute(long.order_by(["person_id", "covariate_id"]))
    sparse = pd.DataFrame({"person_id": frame["person_id"].astype("int64"), "covariate_id": frame["covariate_id"].astype("int64"),
                           "value": np.ones(len(frame), np.float32)})
    ref = frame[["covariate_id", "analysis", "concept_id"]].drop_duplicates("covariate_id").astype({"covariate_id": "int64", "concept_id": "int64"})
    names = _concept_names(session.vocab, set(ref["concept_id"].tolist()))
    ref["covariate_name"] = [f"{a} {names.get(c, f'concept {c}')}" for a, c in zip(ref["analysis"], ref["concept_id"])]
    ref = ref[["covariate_id", "covariate_name", "analysis", "concept_id"]].sort_values("covariate_id").reset_index(drop=True)
    return sparse, ref, []


def _concept_names(vocab: VocabularySource, ids: set[int]) -> dict[int, str]:
    """Names of concept *ids* from the CDM's concept table, else the bundled one (one join each; the
    ids go to the database as a table, not as a list of literals in the SQL)."""
    out: dict[int, str] = {}
    for concept in vocab.sources("concept"):
        todo = sorted(ids - set(out))
        if not todo:
            break
        wanted = ibis.memtable(pa.table({"wanted_id": pa.array(todo, pa.int64())}))
        j = concept.join(wanted, concept.concept_id.cast("int64") == wanted.wanted_id)
        frame = vocab.con.to_pyarrow(j.select(concept_id=j.concept_id.cast("int64"), concept_name=j.concept_name))
        out.update(zip(frame["concept_id"].to_pylist(), (str(v) for v in frame["concept_name"].to_pylist())))
    return out
