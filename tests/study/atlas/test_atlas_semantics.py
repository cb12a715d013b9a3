"""Circe rules worked out by hand on tiny CDMs (circe-be's test vocabulary: concept 1 with children
2 and 3), for what the other references do not reach: distinct counts by domain concept (the SQL
that ohdsi-circepy 0.3.0 writes for it does not run), ``First`` taken before other filters, the
end of an event capped at its observation period, and a concept absent from ``concept``.

Each expectation follows from circe-be's templates (``CohortExpressionQueryBuilder``,
``*SqlBuilder``), as the comments say.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
from test_atlas_circe_be import _cdm

from follicle.study.atlas.engine import compile_on
from follicle.study.atlas.model import parse_definition

PERSON = [{"person_id": 1, "gender_concept_id": 8507, "year_of_birth": 1950, "race_concept_id": 0, "ethnicity_concept_id": 0}]
OP = [{"observation_period_id": 1, "person_id": 1, "observation_period_start_date": "2000-01-01",
       "observation_period_end_date": "2000-12-31", "period_type_concept_id": 0}]


def _co(i: int, concept: int, day: str) -> dict[str, Any]:
    return {"condition_occurrence_id": i, "person_id": 1, "condition_concept_id": concept, "condition_start_date": day,
            "condition_type_concept_id": 0}


def _definition(**kw: Any) -> dict[str, Any]:
    d = {"ConceptSets": [{"id": 0, "name": "parent", "expression": {"items": [{"concept": {"CONCEPT_ID": 1}, "includeDescendants": True}]}},
                         {"id": 1, "name": "child 3", "expression": {"items": [{"concept": {"CONCEPT_ID": 3}}]}}],
         "PrimaryCriteria": {"CriteriaList": [{"ConditionOccurrence": {"CodesetId": 1}}],
                             "ObservationWindow": {"PriorDays": 0, "PostDays": 0}, "PrimaryCriteriaLimit": {"Type": "All"}},
         "QualifiedLimit": {"Type": "All"}, "ExpressionLimit": {"Type": "All"}, "InclusionRules": []}
    d.update(kw)
    return d


def _rows(con: Any, definition: dict[str, Any]) -> list[tuple[str, str]]:
    rows = con.execute(compile_on(parse_definition(definition), con).cohort)
    return [(pd.Timestamp(a).strftime("%Y-%m-%d"), pd.Timestamp(b).strftime("%Y-%m-%d"))
            for a, b in zip(rows.cohort_start_date, rows.cohort_end_date, strict=True)]


def test_distinct_count_by_domain_concept(tmp_path):
    # circe-be counts COUNT(cc.event_id), or COUNT(DISTINCT cc.domain_concept_id) when IsDistinct
    con = _cdm(tmp_path, {"cdm.person": PERSON, "cdm.observation_period": OP, "cdm.condition_occurrence": [
        _co(1, 2, "2000-02-01"), _co(2, 2, "2000-03-01"), _co(3, 3, "2000-04-01"), _co(4, 3, "2000-06-01")]})
    base = _definition(PrimaryCriteria={"CriteriaList": [{"ConditionOccurrence": {"CodesetId": 1, "First": True}}],
                                        "ObservationWindow": {"PriorDays": 0, "PostDays": 0}, "PrimaryCriteriaLimit": {"Type": "Last"}})
    cc = {"Criteria": {"ConditionOccurrence": {"CodesetId": 0}},
          "StartWindow": {"Start": {"Coeff": -1}, "End": {"Days": 1, "Coeff": -1}}}

    def rule(occurrence: dict[str, Any]) -> dict[str, Any]:
        d = copy.deepcopy(base)
        d["InclusionRules"] = [{"name": "r", "expression": {"Type": "ALL", "CriteriaList": [dict(cc, Occurrence=occurrence)]}}]
        return d

    # First on concept 3 is the event of 2000-04-01 (the earliest of the set, before any other filter)
    assert _rows(con, base) == [("2000-04-01", "2000-12-31")]
    # the events before 2000-04-01: concept 2 twice -> 2 events, 1 distinct concept
    assert _rows(con, rule({"Type": 2, "Count": 2})) == [("2000-04-01", "2000-12-31")]
    assert _rows(con, rule({"Type": 2, "Count": 2, "IsDistinct": True})) == []
    assert _rows(con, rule({"Type": 0, "Count": 1, "IsDistinct": True, "CountColumn": "DOMAIN_CONCEPT"})) == [("2000-04-01", "2000-12-31")]
    assert _rows(con, rule({"Type": 2, "Count": 2, "IsDistinct": True, "CountColumn": "START_DATE"})) == [("2000-04-01", "2000-12-31")]


def test_date_offset_capped_and_concept_missing_from_vocabulary(tmp_path):
    con = _cdm(tmp_path, {"cdm.person": PERSON, "cdm.observation_period": OP, "cdm.condition_occurrence": [
        _co(1, 3, "2000-12-01"), _co(2, 99, "2000-05-01")]})
    # dateOffsetStrategy.sql: start + 60 days is after the period end (2000-12-31): the end is the period end
    d = _definition(EndStrategy={"DateOffset": {"DateField": "StartDate", "Offset": 60}})
    assert _rows(con, d) == [("2000-12-01", "2000-12-31")]
    # a concept set lists the concepts found in CONCEPT: 99 is not there, so its events never match
    d = _definition()
    d["ConceptSets"][1]["expression"]["items"] = [{"concept": {"CONCEPT_ID": 99}}]
    assert _rows(con, d) == []
    # descendants come from CONCEPT_ANCESTOR only (the test vocabulary has no self row for 1)
    d = _definition()
    d["ConceptSets"][1]["expression"]["items"] = [{"concept": {"CONCEPT_ID": 1}, "includeDescendants": True, "isExcluded": False},
                                                   {"concept": {"CONCEPT_ID": 2}, "isExcluded": True}]
    assert _rows(con, d) == [("2000-12-01", "2000-12-31")]
