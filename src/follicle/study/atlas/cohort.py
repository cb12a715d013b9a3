"""An ATLAS definition as a cohort of a Follicle study (``atlas: path/to/def.json``).

The definition is generated as Circe would; each person's first cohort entry is the index date
and its end the cohort end (the analysis table has one row per person). The candidates carry the
columns the study engine reads from any cohort (observation period around the index, year of
birth, sex, age) and two steps, both true unless the CDM lacks the person or the period.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from follicle.study.atlas.engine import compile_on
from follicle.study.atlas.model import parse_definition
from follicle.study.cohorts import CompiledCohort, attach
from follicle.study.events import Cdm
from follicle.study.spec import AtlasCohort


def compile_atlas_cohort(name: str, atlas: AtlasCohort, cdm: Cdm,
                         persist: Callable[[ir.Table, str], ir.Table]) -> CompiledCohort:
    """The study-engine form of an ATLAS cohort (see the module docstring)."""
    expr = parse_definition(atlas.definition, source=atlas.path)
    compiled = compile_on(expr, cdm.con, database=cdm.database, persist=persist)
    rows = compiled.cohort
    w = ibis.window(group_by=rows.subject_id, order_by=[rows.cohort_start_date, rows.cohort_end_date])
    first = rows.mutate(_n=ibis.row_number().over(w)).filter(ibis._._n == 0)
    base = first.select(person_id=first.subject_id.cast("int64"), index_date=first.cohort_start_date,
                        cohort_end_date=first.cohort_end_date)
    op = cdm.table("observation_period")
    op = op.select(op_person=op.person_id.cast("int64"), op_start=op.observation_period_start_date.cast("date"),
                   op_end=op.observation_period_end_date.cast("date"))
    j = base.join(op, [base.person_id == op.op_person, op.op_start <= base.index_date, op.op_end >= base.index_date])
    periods = j.group_by("person_id").aggregate(obs_start=j.op_start.min(), obs_end=j.op_end.max())
    person = cdm.table("person")
    people = person.select(person_id=person.person_id.cast("int64"), year_of_birth=person.year_of_birth.cast("int64"),
                           gender_concept_id=person.gender_concept_id.cast("int64"))
    t = attach(base, periods, people)
    steps = [("s_person", "has a person record", t.year_of_birth.notnull()),
             ("s_observed", "cohort start within an observation period", t.obs_start.notnull())]
    candidates = t.select(
        "person_id", "index_date", "cohort_end_date", "obs_start", "obs_end", "year_of_birth", "gender_concept_id",
        age=t.index_date.year().cast("int64") - t.year_of_birth,
        **{flag: value.fill_null(False) for flag, _, value in steps},
    )
    return CompiledCohort(name=name, candidates=persist(candidates, f"cohort_{name}"),
                          steps=[(flag, description) for flag, description, _ in steps])
