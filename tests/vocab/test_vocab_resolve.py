"""Concept-set resolution: ICD-10-CM children on source values, RxNorm by code or name, ATC,
LOINC, OMOP ids with descendants; fallbacks to the bundled subset and to the concept itself."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from follicle.study.events import Cdm, EventStore
from follicle.vocab.conceptset import ConceptEntry, ConceptSet, expand_icd10_range
from follicle.vocab.resolve import (
    VocabularySource,
    resolve_concept_set,
    resolve_concept_sets,
)

CONCEPT = pd.DataFrame(
    [
        # id, name, vocabulary, class, code
        (35207681, "Alopecia (capitis) totalis", "ICD10CM", "4-char billing code", "L63.0"),
        (35207682, "Alopecia universalis", "ICD10CM", "4-char billing code", "L63.1"),
        (35207680, "Alopecia areata", "ICD10CM", "3-char nonbill code", "L63"),
        (35207700, "Other nonscarring hair loss", "ICD10CM", "3-char nonbill code", "L65"),
        (141933, "Alopecia areata", "SNOMED", "Clinical Finding", "68225006"),
        (1510627, "baricitinib", "RxNorm", "Ingredient", "2047232"),
        (1510628, "baricitinib 4 MG Oral Tablet", "RxNorm", "Clinical Drug", "2047241"),
        (40244464, "ruxolitinib", "RxNorm", "Ingredient", "1193326"),
        (21604686, "ANTIDEPRESSANTS", "ATC", "ATC 3rd", "N06A"),
        (739138, "sertraline", "RxNorm", "Ingredient", "36437"),
        (3000963, "Hemoglobin [Mass/volume] in Blood", "LOINC", "Lab Test", "718-7"),
    ],
    columns=["concept_id", "concept_name", "vocabulary_id", "concept_class_id", "concept_code"],
)
ANCESTOR = pd.DataFrame(
    [(1510627, 1510627), (1510627, 1510628), (21604686, 739138), (21604686, 21604686), (141933, 141933)],
    columns=["ancestor_concept_id", "descendant_concept_id"],
)


def _cond(rows):
    return pd.DataFrame(rows, columns=["person_id", "condition_concept_id", "condition_source_concept_id",
                                       "condition_source_value", "condition_start_date", "condition_end_date"])


def test_shorthand_and_validation():
    e = ConceptEntry.model_validate("ICD10CM:L63")
    assert (e.vocabulary, e.code, e.descendants) == ("ICD10CM", "L63", True)
    assert ConceptEntry.model_validate("icd10cm:L63.9!").descendants is False
    assert ConceptEntry.model_validate(192671).vocabulary == "OMOP"
    assert expand_icd10_range("F30-F39") == [f"F3{i}" for i in range(10)]
    for bad in ("ICD10CM:63L", "ATC:N6A", "LOINC:7187", "OMOP:abc", "L63", "SNOMED:123"):
        with pytest.raises(ValidationError):
            ConceptEntry.model_validate(bad)
    with pytest.raises(ValidationError, match="domain is required"):
        ConceptSet.model_validate({"include": ["OMOP:192671"]})
    with pytest.raises(ValidationError, match="several domains"):
        ConceptSet.model_validate({"include": ["ICD10CM:L63", "RxNorm:baricitinib"]})
    assert ConceptSet.model_validate({"include": "LOINC:718-7"}).domain == "measurement"


def test_icd10_children_on_source_values_and_source_concepts(make_db):
    cond = _cond([
        (1, 141933, 35207681, "L63.0", "2020-01-01", None),  # child with dot
        (2, 0, 0, "L631", "2020-01-01", None),  # child without dot, unmapped
        (3, 0, 35207682, None, "2020-01-01", None),  # source concept only
        (4, 0, 0, "l63.9", "2020-01-01", None),  # lower case
        (5, 0, 0, "L65.9", "2020-01-01", None),  # other hair loss: not AA
        (6, 0, 0, "L6", "2020-01-01", None),  # shorter than the category
        (7, 0, 0, "L63.8", "2020-01-01", None),  # excluded below
    ])
    con = make_db({"concept": CONCEPT, "concept_ancestor": ANCESTOR, "condition_occurrence": cond})
    cs = ConceptSet.model_validate({"include": ["ICD10CM:L63"], "exclude": ["ICD10CM:L63.8"]})
    rs = resolve_concept_set("aa", cs, VocabularySource(con, bundled={}))
    assert rs.domain == "condition"
    assert rs.source_concept_ids == {35207681, 35207682, 35207680}
    with EventStore(Cdm(con), {"aa": rs}, {"aa"}) as store:
        people = sorted(con.execute(store.events("aa")).person_id)
    assert people == [1, 2, 3, 4]
    exact = resolve_concept_set("aa0", ConceptSet.model_validate({"include": ["ICD10CM:L63.0!"]}), VocabularySource(con, bundled={}))
    assert exact.source_concept_ids == {35207681}


def test_rxnorm_by_code_or_name_atc_loinc(make_db):
    con = make_db({"concept": CONCEPT, "concept_ancestor": ANCESTOR})
    sets = {
        "bari_name": ConceptSet.model_validate({"include": ["RxNorm:Baricitinib"]}),
        "bari_code": ConceptSet.model_validate({"include": ["RxNorm:2047232"]}),
        "bari_only": ConceptSet.model_validate({"include": ["RxNorm:2047232!"]}),
        "antidep": ConceptSet.model_validate({"include": ["ATC:N06A"]}),
        "hb": ConceptSet.model_validate({"include": ["LOINC:718-7"]}),
        "aa": ConceptSet.model_validate({"domain": "condition", "include": ["OMOP:141933"]}),
        "missing": ConceptSet.model_validate({"include": ["RxNorm:ritlecitinib"]}),
    }
    r = resolve_concept_sets(sets, con, bundled={})
    assert r["bari_name"].concept_ids == r["bari_code"].concept_ids == {1510627, 1510628}
    assert r["bari_only"].concept_ids == {1510627}
    assert r["antidep"].concept_ids == {21604686, 739138}
    assert r["hb"].concept_ids == {3000963} and r["hb"].source_patterns[0].code == "718-7"
    assert r["aa"].concept_ids == {141933}
    assert r["missing"].is_empty and any("not found" in w for w in r["missing"].warnings)


def test_bundled_fallback_when_the_cdm_has_no_vocabulary(make_db):
    con = make_db({"person": pd.DataFrame({"person_id": [1]})})
    bundled = {"concept": CONCEPT, "concept_ancestor": ANCESTOR}
    rs = resolve_concept_set("bari", ConceptSet.model_validate({"include": ["RxNorm:baricitinib"]}),
                             VocabularySource(con, bundled=bundled))
    assert rs.concept_ids == {1510627, 1510628}
    assert any("bundled concept_ancestor" in w for w in rs.warnings)


def test_no_vocabulary_at_all_uses_the_concept_itself(make_db):
    con = make_db({"person": pd.DataFrame({"person_id": [1]})})
    rs = resolve_concept_set("gi", ConceptSet.model_validate({"domain": "condition", "include": [192671]}),
                             VocabularySource(con, bundled={}))
    assert rs.concept_ids == {192671}
    assert any("without descendants" in w for w in rs.warnings)


def test_synthea27nj_empty_concept_ancestor_falls_back_to_relationships(synthea_vocab):
    rel = synthea_vocab.execute(synthea_vocab.table("concept_relationship").filter(
        lambda t: t.relationship_id == "Subsumes"))
    parent = int(rel.concept_id_1.value_counts().index[0])  # the concept with most direct children
    children = set(rel.loc[rel.concept_id_1 == parent, "concept_id_2"].astype(int))
    rs = resolve_concept_set("x", ConceptSet.model_validate({"domain": "condition", "include": [parent]}),
                             VocabularySource(synthea_vocab, bundled={}))
    assert {parent} | children <= rs.concept_ids
    assert any("no concept_ancestor" in w and "concept_relationship" in w for w in rs.warnings)
