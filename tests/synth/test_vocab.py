"""The bundled vocabulary subset: ids from clinical.md, local ids documented, closure correct."""

from __future__ import annotations

from follicle.vocab import bundled, local

# ids given in /work/shared/reference/clinical.md sections 1.2, 1.3 and 5
CLINICAL_MD_IDS = {
    141933: "Alopecia areata", 440383: "Depressive disorder", 4152280: "Major depressive disorder",
    444100: "Mood disorder", 442077: "Anxiety disorder", 434613: "Generalized anxiety disorder",
    435524: "Sleep disorder", 436962: "Insomnia", 438134: "Hypersomnia", 313459: "Sleep apnea",
    442588: "Obstructive sleep apnea syndrome", 438409: "Attention deficit hyperactivity disorder",
    1510627: "baricitinib", 42904205: "tofacitinib", 40244464: "ruxolitinib", 1361580: "upadacitinib",
    19010482: "cyclosporine", 1305058: "methotrexate", 19014878: "azathioprine", 19003999: "mycophenolate mofetil",
    1506270: "methylprednisolone", 1518254: "dexamethasone", 1550557: "prednisolone", 1551099: "prednisone",
    21604686: "Antidepressants", 3013650: "Neutrophils [#/volume] in Blood by Automated count",
    3000963: "Hemoglobin [Mass/volume] in Blood", 3024929: "Platelets [#/volume] in Blood by Automated count",
}


def test_clinical_md_ids_present_with_their_names():
    names = bundled.names()
    for cid, name in CLINICAL_MD_IDS.items():
        assert names[cid] == name


def test_local_salt_ids_match_follicle_vocab_local():
    names = bundled.names()
    for cid, name in local.LOCAL_CONCEPTS.items():
        assert names[cid] == name


def test_local_ids_are_marked_local_or_unverified():
    for r in bundled._concept_rows():
        if r["concept_id"] >= 2_000_000_000:
            assert "local" in r["provenance"], r


def test_every_icd10cm_code_maps_to_a_standard_concept():
    std = {r["concept_id"] for r in bundled._concept_rows() if r["standard_concept"] == "S"}
    icd = [r for r in bundled._concept_rows() if r["vocabulary_id"] == "ICD10CM"]
    assert len(icd) > 50
    for r in icd:
        assert bundled.maps_to()[r["concept_id"]] in std, r["concept_code"]


def test_ancestor_self_rows_and_levels():
    rows = bundled.ancestor_rows()
    pairs = {(a, d): (lo, hi) for a, d, lo, hi in rows}
    assert pairs[(141933, 141933)] == (0, 0)
    assert pairs[(444100, 4152280)] == (2, 2)  # mood > depressive > MDD
    assert pairs[(435524, 442588)] == (2, 2)  # sleep disorder > sleep apnea > OSA
    assert pairs[(21604686, bundled.concept_id("RxNorm", "FOLLICLE-CD-SERT50"))] == (2, 2)
    assert all(lo <= hi for lo, hi in pairs.values())
    assert (442077, 4152280) not in pairs  # anxiety is not an ancestor of depression


def test_relationships_have_reverses():
    rows = set(bundled.relationship_rows())
    src, std = bundled.icd10cm("L63.2")
    assert (src, std, "Maps to") in rows and (std, src, "Mapped from") in rows
    assert (std, std, "Maps to") in rows
