"""Round trips of ``follicle atlas export``.

1. A Follicle cohort written as Circe JSON selects the same people on the same index dates when
   the JSON is generated, by Follicle's compiler and by Circe's own SQL (ohdsi-circepy, which
   also shows that the JSON is a valid Circe definition ATLAS imports). Reference: the Book of
   OHDSI ch. 12 new-user cohorts on GiBleed (tests/study/gibleed_spec.yaml: 1,800 and 830).
2. An ATLAS cohort of a study is written back as its definition: the published definitions
   survive study spec -> export -> generate with the same rows.
"""

from __future__ import annotations

import json

import ibis
import pandas as pd
import pytest
import yaml
from atlas_defs import HERE, PUBLISHED
from circe_oracle import circe_rows

from follicle.errors import SpecError
from follicle.study.atlas.engine import compile_on
from follicle.study.atlas.export import cohort_to_circe
from follicle.study.atlas.model import load_definition, parse_definition
from follicle.study.session import StudySession
from follicle.study.spec import load_spec, parse_spec

SPEC = HERE.parent / "gibleed_spec.yaml"


@pytest.fixture(scope="module")
def duck(gibleed_full_db):
    return ibis.duckdb.connect(str(gibleed_full_db), read_only=True)


def _members(spec, con, cohort) -> pd.DataFrame:
    with StudySession(spec, con) as s:
        m = con.execute(s.cohort(cohort).members.select("person_id", "index_date"))
    return _pairs(m.person_id, m.index_date)


def _pairs(ids, dates) -> pd.DataFrame:
    out = pd.DataFrame({"person_id": pd.Series(ids).astype("int64").to_numpy(),
                        "index_date": pd.to_datetime(pd.Series(dates)).dt.strftime("%Y-%m-%d").to_numpy()})
    return out.sort_values(["person_id"]).reset_index(drop=True)


@pytest.mark.parametrize(("cohort", "size"), [("celecoxib", 1800), ("diclofenac", 830)])
def test_follicle_cohort_exported_selects_the_same_people(cohort, size, duck, gibleed_full_db, circepy, tmp_path):
    spec = load_spec(SPEC)
    definition = cohort_to_circe(spec, cohort, duck)
    rows = duck.execute(compile_on(parse_definition(definition), duck).cohort)
    mine = _pairs(rows.subject_id, rows.cohort_start_date)
    follicle = _members(spec, duck, cohort)
    assert len(follicle) == size  # Book of OHDSI
    pd.testing.assert_frame_equal(mine, follicle)
    theirs, _ = circe_rows(gibleed_full_db, definition, tmp_path)
    pd.testing.assert_frame_equal(_pairs(theirs.subject_id, theirs.cohort_start_date), follicle)


def test_follicle_cohort_with_steps_round_trips(duck, circepy, gibleed_full_db, tmp_path):
    """Washout, minimum exposures, a required and an excluded set, age: the same people either way."""
    raw = yaml.safe_load(SPEC.read_text())
    raw["concept_sets"]["sinusitis"] = {"domain": "condition", "include": ["OMOP:40481087"]}
    raw["concept_sets"]["acetaminophen"] = {"include": ["RxNorm:acetaminophen"]}
    raw["cohorts"]["cel_steps"] = {  # Follicle's attrition: 1800, then 1210 (sinusitis), 476 (age), 436
        "entry": {"concept_set": "celecoxib"}, "prior_observation_days": 180, "washout_days": 365,
        "min_exposures": {"count": 1, "window": {"start": 0, "end": 30}},
        "require": [{"concept_set": "sinusitis", "window": {"start": -3650, "end": 0}}],
        "exclude": [{"concept_set": "acetaminophen", "window": {"start": -365, "end": -1}}],
        "age": {"min": 40, "max": 60},
    }
    spec = parse_spec(raw)
    definition = cohort_to_circe(spec, "cel_steps", duck)
    rows = duck.execute(compile_on(parse_definition(definition), duck).cohort)
    follicle = _members(spec, duck, "cel_steps")
    assert len(follicle) == 436
    pd.testing.assert_frame_equal(_pairs(rows.subject_id, rows.cohort_start_date), follicle)
    theirs, _ = circe_rows(gibleed_full_db, definition, tmp_path)
    pd.testing.assert_frame_equal(_pairs(theirs.subject_id, theirs.cohort_start_date), follicle)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_atlas_cohort_exported_is_its_definition(name, duck, tmp_path):
    spec_path = tmp_path / "study.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": "atlas_round_trip", "concept_sets": {"gi_bleed": {"domain": "condition", "include": ["OMOP:192671"]}},
        "cohorts": {"a": {"atlas": str(HERE / name)}, "b": {"entry": {"concept_set": "gi_bleed"}}},
        "comparisons": {"a_vs_b": {"target": "a", "comparator": "b"}},
    }))
    exported = cohort_to_circe(load_spec(spec_path), "a", duck)
    again = tmp_path / "again.json"
    again.write_text(json.dumps(exported))
    original = duck.execute(compile_on(load_definition(HERE / name), duck).cohort)
    back = duck.execute(compile_on(load_definition(again), duck).cohort)
    pd.testing.assert_frame_equal(back.sort_values(list(back.columns)).reset_index(drop=True),
                                  original.sort_values(list(original.columns)).reset_index(drop=True))


def test_export_refuses_what_circe_cannot_say(duck):
    raw = yaml.safe_load(SPEC.read_text())
    raw["concept_sets"]["aa"] = {"include": ["ICD10CM:L63"]}
    raw["cohorts"]["routed"] = {"entry": {"concept_set": "celecoxib"}, "route": {"include": [4132161]}}
    raw["cohorts"]["nested"] = {"entry": {"concept_set": "celecoxib"}, "require": [{"cohort": "diclofenac"}]}
    raw["cohorts"]["aa_entry"] = {"entry": {"concept_set": "aa"}}
    spec = parse_spec(raw)
    with pytest.raises(SpecError) as err:
        cohort_to_circe(spec, "routed", duck)
    assert any(p.startswith("cohorts.routed.route:") for p in err.value.problems)
    with pytest.raises(SpecError) as err:
        cohort_to_circe(spec, "nested", duck)
    assert any(p.startswith("cohorts.nested.require[0].cohort:") for p in err.value.problems)
    with pytest.raises(SpecError) as err:
        cohort_to_circe(spec, "aa_entry", duck)
    assert any("concept set 'aa'" in p for p in err.value.problems)
