"""The Circe definition model: every published definition parses and round-trips; what the
compiler does not implement is refused by its JSON path, never ignored."""

from __future__ import annotations

import json

import pytest
from atlas_defs import DEFINITIONS, HERE

from follicle.errors import SpecError
from follicle.study.atlas.model import CohortExpression, load_definition, parse_definition


def _base() -> dict:
    return json.loads((HERE / "ohdsi/GIBleed_male.json").read_text())


@pytest.mark.parametrize("name", DEFINITIONS)
def test_parse_and_round_trip(name):
    expr = load_definition(HERE / name)
    assert parse_definition(expr.dump()) == expr
    assert CohortExpression.model_validate_json(json.dumps(expr.dump())) == expr


@pytest.mark.parametrize(("path", "value"), [
    (["PrimaryCriteria", "CriteriaList", 0, "ConditionOccurrence", "ProviderSpecialty"], [{"CONCEPT_ID": 38004446}]),
    (["PrimaryCriteria", "CriteriaList", 0, "ConditionOccurrence", "StopReason"], {"Text": "x", "Op": "contains"}),
    (["InclusionRules", 1, "expression", "CriteriaList", 0, "Criteria", "ObservationPeriod", "UserDefinedPeriod"],
     {"StartDate": "2010-01-01"}),
    (["InclusionRules", 0, "expression", "DemographicCriteriaList", 0, "GenderCS"], {"CodesetId": 0}),
])
def test_unsupported_element_refused_by_json_path(path, value):
    d = _base()
    obj = d
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value
    with pytest.raises(SpecError) as err:
        parse_definition(d, source="def.json")
    expected = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    assert any(p.startswith(expected + ":") and "not supported" in p for p in err.value.problems), err.value.problems


def test_unsupported_domain_refused():
    d = _base()
    d["PrimaryCriteria"]["CriteriaList"].append({"DeviceExposure": {"CodesetId": 0}})
    with pytest.raises(SpecError) as err:
        parse_definition(d)
    assert any("$.PrimaryCriteria.CriteriaList[1].DeviceExposure" in p for p in err.value.problems)


def test_empty_unknown_elements_and_key_case_are_accepted():
    d = _base()
    d["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"]["ProviderSpecialty"] = []
    d["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"]["VisitType"] = None
    d["primarycriteria"] = d.pop("PrimaryCriteria")
    expr = parse_definition(d)
    assert expr.primary_criteria.criteria_list[0].domain == "ConditionOccurrence"
    assert expr == parse_definition(_base())


def test_every_problem_listed_with_its_path():
    d = _base()
    d["ConceptSets"] = []  # criteria now refer to a missing concept set
    d["QualifiedLimit"] = {"Type": "Sometimes"}
    d["CollapseSettings"] = {"CollapseType": "ERA", "EraPad": "x"}
    with pytest.raises(SpecError) as err:
        parse_definition(d)
    text = err.value.render()
    assert "$.QualifiedLimit.Type" in text and "$.CollapseSettings.EraPad" in text


def test_missing_codeset_reference_named():
    d = _base()
    d["ConceptSets"][0]["id"] = 7
    with pytest.raises(SpecError, match="problem") as err:
        parse_definition(d)
    assert any("concept set id(s) [0]" in p for p in err.value.problems)


def test_between_needs_extent_and_window_needs_ends():
    d = _base()
    d["InclusionRules"][0]["expression"]["DemographicCriteriaList"][0]["Age"] = {"Value": 40, "Op": "bt"}
    del d["InclusionRules"][1]["expression"]["CriteriaList"][0]["StartWindow"]["Start"]
    with pytest.raises(SpecError) as err:
        parse_definition(d)
    problems = "\n".join(err.value.problems)
    assert "Age" in problems and "needs an Extent" in problems
    assert "StartWindow.Start" in problems


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="bad.json: not valid JSON"):
        load_definition(bad)
    arr = tmp_path / "arr.json"
    arr.write_text("[]")
    with pytest.raises(SpecError, match="JSON object"):
        load_definition(arr)


def test_webapi_wrapper_and_new_unit_spelling():
    wrapped = {"name": "x", "expression": _base()}
    assert parse_definition(wrapped) == parse_definition(_base())
    d = json.loads((HERE / "circe_be/continuousExposureExpression.json").read_text())
    era = parse_definition(d).end_strategy.custom_era
    assert (era.gap_days, era.offset) == (60, 0)
    unit = dict(d, EndStrategy={"CustomEra": {"DrugCodesetId": 0, "GapUnit": "month", "GapUnitValue": 2}})
    with pytest.raises(SpecError, match="problem"):
        parse_definition(unit)  # only day units are implemented: refused, not read as days
