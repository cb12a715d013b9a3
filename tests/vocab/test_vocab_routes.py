"""Resolution routes for CDMs without concept_ancestor: RxNorm drug names, ATC codes, drug_strength,
ICD-10-CM mapped concepts; and which events the vocabulary cannot place."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from follicle.study.events import icd10cm_coded, set_flags
from follicle.vocab.conceptset import ConceptSet
from follicle.vocab.names import contains_ingredient, drugs_containing, name_pattern
from follicle.vocab.resolve import is_icd10cm, resolve_concept_sets
from follicle.vocab.source import ATC_CODE, DRUG_NAME, DRUG_STRENGTH, VocabularySource

COLS = ["concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept", "concept_code"]
CONCEPT = pd.DataFrame([
    (1551099, "prednisone", "Drug", "RxNorm", "Ingredient", "S", "8640"),
    (1550557, "prednisolone", "Drug", "RxNorm", "Ingredient", "S", "8638"),
    (1506270, "methylprednisolone", "Drug", "RxNorm", "Ingredient", "S", "6902"),
    (1551192, "prednisone 5 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "S", "312617"),
    (1551101, "prednisone Oral Tablet", "Drug", "RxNorm", "Clinical Drug Form", "S", "372678"),
    (1550560, "prednisolone 5 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "S", "312615"),
    (1506479, "methylprednisolone 4 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "S", "259966"),
    (19010482, "cyclosporine", "Drug", "RxNorm", "Ingredient", "S", "3008"),
    (19010522, "cyclosporine, modified 100 MG Oral Capsule [Neoral]", "Drug", "RxNorm", "Branded Drug", "S", "241834"),
    (21603823, "Corticosteroids for systemic use, plain", "Drug", "ATC", "ATC 3rd", "C", "H02A"),
    (21603825, "Glucocorticoids", "Drug", "ATC", "ATC 4th", "C", "H02AB"),
    (21603831, "prednisone", "Drug", "ATC", "ATC 5th", "C", "H02AB07"),
    (21603830, "prednisolone", "Drug", "ATC", "ATC 5th", "C", "H02AB06"),
    (45000001, "influenza vaccine", "Drug", "CVX", "CVX", "S", "141"),
    (35207681, "Alopecia (capitis) totalis", "Condition", "ICD10CM", "4-char billing code", None, "L63.0"),
    (35207680, "Alopecia areata", "Condition", "ICD10CM", "3-char nonbill code", None, "L63"),
    (35211274, "Insomnia due to medical condition", "Condition", "ICD10CM", "4-char billing code", None, "G47.0"),
    (35208160, "Insomnia not due to a substance", "Condition", "ICD10CM", "4-char billing code", None, "F51.0"),
    (141933, "Alopecia areata", "Condition", "SNOMED", "Clinical Finding", "S", "68225006"),
    (436962, "Insomnia", "Condition", "SNOMED", "Clinical Finding", "S", "193462001"),
], columns=COLS)
MAPS_TO = pd.DataFrame([(35207681, 141933, "Maps to"), (35207680, 141933, "Maps to"), (35211274, 436962, "Maps to"),
                        (35208160, 436962, "Maps to")], columns=["concept_id_1", "concept_id_2", "relationship_id"])


@pytest.mark.parametrize(("drug", "ingredient", "expected"), [
    ("prednisone 5 mg oral tablet", "prednisone", True),
    ("prednisolone 5 mg oral tablet", "prednisone", False),
    ("methylprednisolone 4 mg oral tablet", "prednisolone", False),
    ("cyclosporine, modified 100 mg oral capsule [neoral]", "cyclosporine", True),
    ("{21 (ethinyl estradiol 0.03 mg / levonorgestrel 0.15 mg oral tablet) } pack", "levonorgestrel", True),
    ("mycophenolate mofetil 500 mg oral tablet", "mycophenolate mofetil", True),
    ("mycophenolic acid 180 mg delayed release oral tablet", "mycophenolate mofetil", False),
    ("vitamin b12 1 mg/ml injectable solution", "vitamin b12", True),
])
def test_drug_names_contain_ingredients_as_whole_words(drug, ingredient, expected):
    assert contains_ingredient(drug, ingredient) is expected
    assert bool(drugs_containing([ingredient], [drug], [1])[ingredient]) is expected


def test_name_pattern_escapes_regex_characters():
    assert "\\(" in name_pattern(["a (b)"]) and contains_ingredient("a (b) 5 mg", "a (b)")


def test_concept_only_vocabulary_drug_name_and_atc_routes(make_db):
    con = make_db({"concept": CONCEPT})
    sets = {
        "pred": ConceptSet(include=["RxNorm:prednisone"]),
        "prednisolone": ConceptSet(include=["RxNorm:8638"]),
        "cyclo": ConceptSet(include=["RxNorm:cyclosporine"]),
        "glucocorticoids": ConceptSet(include=["ATC:H02AB"]),
        "pred_only": ConceptSet(include=["RxNorm:prednisone!"]),
    }
    r = resolve_concept_sets(sets, con, bundled={})
    assert r["pred"].concept_ids == {1551099, 1551192, 1551101}  # drug and dose form; not prednisolone
    assert r["prednisolone"].concept_ids == {1550557, 1550560}  # not methylprednisolone
    assert r["cyclo"].concept_ids == {19010482, 19010522}
    assert r["pred_only"].concept_ids == {1551099}
    routes = {(x.route): x for x in r["pred"].routes}
    assert routes[DRUG_NAME].concept_ids == {1551192, 1551101}
    # ATC: the classes below H02AB by code, their ingredients by name, those ingredients' drugs by name
    glu = r["glucocorticoids"]
    assert {1551099, 1551192, 1551101, 1550557, 1550560, 21603831, 21603830} <= glu.concept_ids
    assert 1506479 not in glu.concept_ids  # methylprednisolone is not under H02AB here (no H02AB04 row)
    assert {x.route for x in glu.routes} >= {ATC_CODE, DRUG_NAME}
    assert r["pred"].hierarchy == "fallback" and r["pred"].drug_names
    assert any("no concept_ancestor" in w and "drug name" in w for w in r["pred"].warnings)


def test_drug_strength_route(make_db):
    strength = pd.DataFrame({"drug_concept_id": [1551192, 777], "ingredient_concept_id": [1551099, 1551099]})
    ancestor = pd.DataFrame({"ancestor_concept_id": [1551099], "descendant_concept_id": [1551099]})
    con = make_db({"concept": CONCEPT, "concept_ancestor": ancestor, "drug_strength": strength})
    r = resolve_concept_sets({"pred": ConceptSet(include=["RxNorm:prednisone"])}, con, bundled={})["pred"]
    assert r.concept_ids == {1551099, 1551192, 777}
    assert {x.route: x.concept_ids for x in r.routes}[DRUG_STRENGTH] == {1551192, 777}
    assert r.hierarchy == "concept_ancestor" and not r.warnings


def test_icd10cm_mapped_concepts_decide_only_rows_not_coded_in_icd10cm(make_db):
    con = make_db({"concept": CONCEPT, "concept_relationship": MAPS_TO})
    r = resolve_concept_sets({"insomnia": ConceptSet(include=["ICD10CM:G47.0"]),
                              "aa": ConceptSet(include=["ICD10CM:L63"])}, con, bundled={})
    assert r["insomnia"].mapped_concept_ids == {436962} and r["aa"].mapped_concept_ids == {141933}
    codes = pa.table({"concept_id": pa.array([436962, 436962, 436962, 436962], pa.int64()),
                      "source_concept_id": pa.array([0, 0, 0, 0], pa.int64()),
                      "source_value": ["G47.0", "F51.0", "193462001", None]})
    flags = set_flags(codes, r["insomnia"], (["G47.0"], []))
    # G47.0 by its own code; F51.0 maps to the same SNOMED concept but is its own ICD code, so not
    # insomnia G47.0; the SNOMED-coded and uncoded rows are decided by the mapped concept
    assert flags.to_pylist() == [True, False, True, True]


def test_is_icd10cm():
    assert [is_icd10cm(v) for v in ("L63.0", "l630", "F32", "G47.00", "193462001", "", None, "S93.401AX")] == \
        [True, True, True, True, False, False, False, False]
    assert icd10cm_coded(pa.array(["L63.0", "193462001", None])).to_pylist() == [True, False, False]


def test_placed_concepts(make_db):
    rel = pd.DataFrame({"concept_id_1": [1551099], "concept_id_2": [1551192], "relationship_id": ["RxNorm ing of"]})
    con = make_db({"concept": CONCEPT, "concept_relationship": rel})
    vocab = VocabularySource(con, bundled={})
    ids = {1551192, 1550560, 45000001, 141933, 999}
    assert vocab.placed(ids, drug_names=False) == {1551192}  # a parent in concept_relationship
    assert vocab.placed(ids, drug_names=True) == {1551192, 1550560}  # and RxNorm drugs, by name
    assert vocab.known(ids) == {1551192, 1550560, 45000001, 141933}


def test_maps_to_and_mapped_from(make_db):
    con = make_db({"concept": CONCEPT, "concept_relationship": MAPS_TO})
    vocab = VocabularySource(con, bundled={})
    assert vocab.maps_to({35207681, 35211274}) == {141933, 436962}
    assert vocab.mapped_from({436962}) == {35211274, 35208160}  # G47.0 and F51.0 both map to Insomnia
    assert vocab.mapped_from(set()) == set()


def test_concept_sets_resolve_in_a_constant_number_of_queries(make_db, monkeypatch):
    """Resolving many ICD-10-CM sets asks the vocabulary as often as resolving one (the look-ups
    are batched across sets), and finds the same concepts as resolving each set alone."""
    con = make_db({"concept": CONCEPT, "concept_relationship": MAPS_TO})
    one = {"aa": ConceptSet(include=["ICD10CM:L63"])}
    many = one | {"insomnia": ConceptSet(include=["ICD10CM:G47.0"]), "f51": ConceptSet(include=["ICD10CM:F51.0"]),
                  "sleep": ConceptSet(include=["ICD10CM:G47", "ICD10CM:F51"]), "aa0": ConceptSet(include=["ICD10CM:L63.0"])}
    queries = []
    execute = type(con).execute
    monkeypatch.setattr(type(con), "execute", lambda self, expr, *a, **k: queries.append(expr) or execute(self, expr, *a, **k))
    alone = {name: resolve_concept_sets({name: cs}, con, bundled={})[name] for name, cs in many.items()}
    queries.clear()
    resolve_concept_sets(one, con, bundled={})
    n_one = len(queries)
    queries.clear()
    together = resolve_concept_sets(many, con, bundled={})
    assert len(queries) == n_one
    assert together["sleep"].mapped_concept_ids == {436962} and together["aa"].mapped_concept_ids == {141933}
    for name, rs in together.items():
        assert (rs.source_concept_ids, rs.mapped_concept_ids, rs.routes) == \
            (alone[name].source_concept_ids, alone[name].mapped_concept_ids, alone[name].routes)


def test_maps_to_falls_back_to_the_bundled_relationships_per_concept(make_db):
    """An id the CDM's concept_relationship does not map is mapped by the bundled one; an id the
    CDM maps is not (batched look-ups keep that rule per concept)."""
    con = make_db({"concept": CONCEPT, "concept_relationship": MAPS_TO[MAPS_TO.concept_id_1 != 35211274]})
    bundled_rel = pd.DataFrame([(35211274, 436962, "Maps to"), (35207681, 999, "Maps to")],
                               columns=["concept_id_1", "concept_id_2", "relationship_id"])
    vocab = VocabularySource(con, bundled={"concept_relationship": bundled_rel})
    vocab.prefetch_maps_to({35207681, 35211274, 1})
    assert vocab.maps_to({35207681}) == {141933}  # the CDM maps it: the bundled row is not used
    assert vocab.maps_to({35211274}) == {436962}  # only the bundled one maps it
    assert vocab.maps_to({1}) == set()
