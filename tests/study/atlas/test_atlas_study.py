"""An ATLAS definition as a cohort of a study spec (``atlas: path/to/def.json``).

Reference: the Book of OHDSI ch. 12 exercise on GiBleed (tests/study/test_study_gibleed.py):
1,800 celecoxib vs 830 diclofenac new users, GI bleed in 355 and 124 of them; here the celecoxib
cohort is the ATLAS definition features/new_user_custom_era.json.
"""

from __future__ import annotations

import json

import ibis
import pytest
import yaml
from atlas_defs import HERE

from follicle.errors import SpecError
from follicle.study.hashing import part_hashes
from follicle.study.population import build_population
from follicle.study.spec import StudySpec, load_spec

SPEC = HERE / "atlas_spec.yaml"


def test_book_of_ohdsi_numbers_with_an_atlas_cohort(gibleed_full_db):
    spec = load_spec(SPEC)
    pop = build_population(spec, ibis.duckdb.connect(str(gibleed_full_db), read_only=True), "cel_vs_dic")
    t = pop.table
    assert (t.treatment == 1).sum() == 1800 and (t.treatment == 0).sum() == 830
    events = t.groupby("treatment")["gi_bleed_event"].sum()
    assert events[1] == 355 and events[0] == 124
    a = pop.attrition.set_index(["cohort", "step"])["persons"]
    assert a[("celecoxib", "entry")] == 1800


def test_spec_carries_the_definition_and_round_trips(tmp_path):
    spec = load_spec(SPEC)
    atlas = spec.cohorts["celecoxib"].atlas
    assert atlas is not None and atlas.definition["PrimaryCriteria"]["ObservationWindow"]["PriorDays"] == 365
    assert StudySpec.from_yaml(spec.to_yaml()) == spec
    assert StudySpec.from_json(spec.to_json()) == spec
    # the definition's content, not its file name, is hashed: an edited file changes the population hash
    d = json.loads((HERE / "features/new_user_custom_era.json").read_text())
    d["PrimaryCriteria"]["ObservationWindow"]["PriorDays"] = 180
    (tmp_path / "features").mkdir()
    (tmp_path / "features/new_user_custom_era.json").write_text(json.dumps(d))
    (tmp_path / "atlas_spec.yaml").write_text(SPEC.read_text())
    edited = load_spec(tmp_path / "atlas_spec.yaml")
    assert part_hashes(edited, "cel_vs_dic")["population"] != part_hashes(spec, "cel_vs_dic")["population"]


def _write(tmp_path, cohort: dict) -> str:
    raw = yaml.safe_load(SPEC.read_text())
    raw["cohorts"]["celecoxib"] = cohort
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_bad_atlas_cohorts_name_their_field(tmp_path):
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, {"atlas": "missing.json"}))
    assert any(p.startswith("cohorts.celecoxib.atlas") and "not found" in p for p in err.value.problems)
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, {"atlas": str(HERE / "ohdsi/GIBleed_male.json"), "entry": {"concept_set": "diclofenac"}}))
    assert any("exactly one" in p for p in err.value.problems)
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, {"atlas": str(HERE / "ohdsi/GIBleed_male.json"), "prior_observation_days": 30}))
    assert any("prior_observation_days" in p for p in err.value.problems)
    bad = json.loads((HERE / "ohdsi/GIBleed_male.json").read_text())
    bad["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"]["ProviderSpecialty"] = [{"CONCEPT_ID": 1}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, {"atlas": "bad.json"}))
    assert "ProviderSpecialty" in err.value.render() and "cohorts.celecoxib.atlas" in err.value.render()


def test_live_attrition_of_an_atlas_cohort(gibleed_full_db):
    """``cohort_attrition`` (the live attrition of one cohort) takes an ATLAS cohort too."""
    from follicle.study.counts import cohort_attrition

    out = cohort_attrition(load_spec(SPEC), ibis.duckdb.connect(str(gibleed_full_db), read_only=True), "celecoxib")
    assert out["attrition"].persons.tolist() == [1800, 1800, 1800]
