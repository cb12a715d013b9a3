"""The default covariate set of a comparison, computed in the database.

As OHDSI FeatureExtraction's default covariates (simplified): one 0/1 covariate per person and

* sex (``gender_concept_id * 1000 + 1``), 5-year age group (``group * 1000 + 3``, group =
  age // 5) and index year (``year * 1000 + 6``);
* condition (analysis 102 long term, 104 short term), drug ingredient (402 / 404), procedure
  (502 / 504) and measurement (702 / 704) concept with a record in the window, ``covariate_id =
  concept_id * 1000 + analysis_id``.

A condition, procedure or measurement counts when it starts in the window; a drug exposure when
it overlaps it (as FeatureExtraction's drug-era covariates), rolled up to every ingredient it
contains through ``concept_ancestor`` (the drug concept itself when the CDM has no ingredient for
it). Concept 0, the concepts of the compared cohorts' entry concept sets and of the excluded concept
sets (with descendants, as resolved) are left out, for drugs both before and after the roll-up.
Only the long-format rows (person, covariate) leave the database, never a dense matrix.

References
----------
Schuemie MJ et al. FeatureExtraction: generating features for a cohort (OHDSI R package;
``createDefaultCovariateSettings``, analysis ids of ``inst/csv/PrespecAnalyses.csv``).
Tian Y, Schuemie MJ, Suchard MA. Evaluating large-scale propensity score performance through
real-world and synthetic data experiments. Int J Epidemiol 2018;47:2005-2014.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from follicle.study.events import DOMAINS, Cdm, generic_events
from follicle.study.spec import DefaultCovariates

#: domain -> (long-term analysis id, short-term analysis id, label), FeatureExtraction's ids
ANALYSES = {
    "condition": (102, 104, "condition"),
    "drug": (402, 404, "drug ingredient"),
    "procedure": (502, 504, "procedure"),
    "measurement": (702, 704, "measurement"),
}
GENDER, AGE_GROUP, INDEX_YEAR = 1, 3, 6


@dataclass
class DefaultSet:
    """The rows (``person_id``, ``covariate_id``; Arrow) and the warnings of one extraction."""

    rows: pa.Table
    warnings: list[str] = field(default_factory=list)


def _ingredients(cdm: Cdm, vocab: Any, drugs: ir.Table) -> tuple[ir.Table | None, str | None]:
    """(drug concept_id, ingredient) for the drug concepts of *drugs* that roll up to an ingredient, or
    None with a warning when the CDM has no concept_ancestor or concept table."""
    ancestor, concept = vocab.cdm_table("concept_ancestor"), vocab.cdm_table("concept")
    if ancestor is None or concept is None:
        return None, ("default covariates: the CDM has no concept_ancestor/concept rows, so drugs are not rolled up "
                      "to ingredients (one covariate per drug concept)")
    ing = concept.filter(concept.concept_class_id == "Ingredient").select(ingredient=concept.concept_id.cast("int64"))
    ca = ancestor.select(anc=ancestor.ancestor_concept_id.cast("int64"), desc=ancestor.descendant_concept_id.cast("int64"))
    m = drugs.join(ca, drugs.concept_id == ca.desc).join(ing, ca.anc == ing.ingredient)
    return m.select("concept_id", "ingredient").distinct(), None


def _id_table(ids: set[int]) -> ir.Table:
    return ibis.memtable(pa.table({"ex_id": pa.array(sorted(ids), pa.int64())}))


def default_covariates(cdm: Cdm, vocab: Any, pop: ir.Table, settings: DefaultCovariates, excluded: set[int],
                       *, persist: Any = None) -> DefaultSet:
    """The default covariate rows of the people of *pop* (columns ``person_id``, ``index_date``,
    ``age``, ``gender_concept_id``), *excluded* concept ids left out; *persist* (a callable
    ``(expr, label) -> table``) keeps the small drug-to-ingredient map in a temporary table."""
    warnings: list[str] = []
    p = pop.select("person_id", "index_date")
    parts: list[ir.Table] = []
    ex = _id_table(excluded)
    lo, short, hi = settings.long_term_start_days, settings.short_term_start_days, settings.end_days
    for domain in settings.domains:
        if not cdm.has(DOMAINS[domain].table):
            warnings.append(f"default covariates: the CDM has no {DOMAINS[domain].table} table; {domain} covariates left out")
            continue
        long_id, short_id, _ = ANALYSES[domain]
        ev = generic_events(cdm, domain).select("person_id", "concept_id", "start_date", "end_date")
        j = p.join(ev, "person_id")
        first = j.start_date.delta(j.index_date, unit="day")
        last = j.end_date.delta(j.index_date, unit="day") if domain == "drug" else first
        # a drug counts when its exposure overlaps the window, other records when they start in it
        keep = (first <= hi) & (last >= lo) & j.concept_id.notnull() & (j.concept_id != 0)
        rows = j.filter(keep).select("person_id", "concept_id", last=last)
        rows = rows.filter(~rows.concept_id.isin(ex.ex_id))
        if domain == "drug":
            codes = rows.select("concept_id").distinct()
            mapping, warning = _ingredients(cdm, vocab, codes)
            if warning:
                warnings.append(warning)
            else:
                mapping = persist(mapping, "ingredients") if persist is not None else mapping
                rolled = rows.left_join(mapping, "concept_id")
                rows = rolled.select("person_id", "last", concept_id=ibis.coalesce(rolled.ingredient, rolled.concept_id))
                again = _id_table(excluded)  # a second reference to the list in one query
                rows = rows.filter(~rows.concept_id.isin(again.ex_id))
        per = rows.group_by(["person_id", "concept_id"]).aggregate(recent=(rows["last"] >= short).any())
        parts.append(per.select("person_id", covariate_id=per.concept_id * 1000 + long_id))
        recent = per.filter(per.recent)
        parts.append(recent.select("person_id", covariate_id=recent.concept_id * 1000 + short_id))
    if settings.demographics:
        d = pop.select("person_id", "index_date", "age", "gender_concept_id")
        g = d.filter(d.gender_concept_id.notnull() & (d.gender_concept_id != 0))
        parts.append(g.select("person_id", covariate_id=g.gender_concept_id.cast("int64") * 1000 + GENDER))
        a = d.filter(d.age.notnull() & (d.age >= 0))
        parts.append(a.select("person_id", covariate_id=(a.age // 5).cast("int64") * 1000 + AGE_GROUP))
        parts.append(d.select("person_id", covariate_id=d.index_date.year().cast("int64") * 1000 + INDEX_YEAR))
    if not parts:
        return DefaultSet(pa.table({"person_id": pa.array([], pa.int64()), "covariate_id": pa.array([], pa.int64())}), warnings)
    union = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    table = cdm.con.to_pyarrow(union.select(person_id=union.person_id.cast("int64"),
                                            covariate_id=union.covariate_id.cast("int64")))
    return DefaultSet(table, warnings)


def covariate_names(covariate_ids: np.ndarray, concept_names: dict[int, str], settings: DefaultCovariates) -> pd.DataFrame:
    """``covariate_id, covariate_name, analysis, concept_id`` of default-set covariate ids."""
    ids = np.asarray(covariate_ids, dtype=np.int64)
    concept, analysis = ids // 1000, ids % 1000
    windows = {"long": f"day {settings.long_term_start_days} to {settings.end_days}",
               "short": f"day {settings.short_term_start_days} to {settings.end_days}"}
    by_id: dict[int, tuple[str, str]] = {}
    for long_id, short_id, label in ANALYSES.values():
        by_id[long_id], by_id[short_id] = (label, "long"), (label, "short")
    names, kinds = [], []
    for c, a in zip(concept.tolist(), analysis.tolist()):
        if a == GENDER:
            names.append(f"sex: {concept_names.get(c, f'concept {c}')}")
            kinds.append("demographics")
        elif a == AGE_GROUP:
            names.append(f"age group: {5 * c}-{5 * c + 4}")
            kinds.append("demographics")
        elif a == INDEX_YEAR:
            names.append(f"index year: {c}")
            kinds.append("demographics")
        else:
            label, window = by_id[a]
            names.append(f"{label} {windows[window]}: {concept_names.get(c, f'concept {c}')}")
            kinds.append(label)
    concept_id = np.where(np.isin(analysis, (AGE_GROUP, INDEX_YEAR)), 0, concept)
    return pd.DataFrame({"covariate_id": ids, "covariate_name": names, "analysis": kinds, "concept_id": concept_id})
