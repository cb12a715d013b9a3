"""``cdm check`` and the vocabulary: missing or empty vocabulary tables warn, and the share of event
rows whose concept id is absent from CONCEPT is reported (recomputed here with pandas)."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd

from follicle.cdm.check import run_checks
from follicle.cdm.connect import connect


def _checks(path):
    con = connect(path, read_only=True)
    try:
        return {r.id: r for r in run_checks(con)}
    finally:
        con.disconnect()


def test_synthea_empty_concept_ancestor_warns(synthea_load):
    r = _checks(synthea_load[0])
    assert r["vocabulary_rows.concept_ancestor"].status == "WARN"
    assert r["vocabulary_rows.concept"].status == "PASS"
    assert r["vocabulary_rows.concept_relationship"].status == "PASS"


def test_gibleed_vocabulary_removed_and_unknown_concepts(gibleed_db, gibleed_dir, tmp_path):
    path = tmp_path / "gibleed.duckdb"
    shutil.copy(gibleed_db, path)
    full = _checks(path)
    assert all(full[f"vocabulary_rows.{t}"].status == "PASS" for t in ("concept", "concept_relationship", "concept_ancestor"))
    assert all(full[f"concept_known.{t}"].violating == 0 for t in ("drug_exposure", "condition_occurrence", "measurement"))
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE concept_ancestor")
    con.execute("DROP TABLE concept_relationship")
    # a vocabulary that lacks the drugs: every drug concept that is not an ingredient removed
    con.execute("DELETE FROM concept WHERE domain_id = 'Drug' AND concept_class_id <> 'Ingredient'")
    concept = con.execute("SELECT concept_id FROM concept").df()
    con.close()
    r = _checks(path)
    assert r["vocabulary_rows.concept_ancestor"].status == "WARN"
    assert r["vocabulary_rows.concept_relationship"].status == "WARN"
    assert r["vocabulary_rows.concept"].status == "PASS"
    drugs = pd.read_csv(gibleed_dir / "drug_exposure.csv", usecols=["drug_concept_id"]).drug_concept_id
    unknown = ((drugs != 0) & ~drugs.isin(concept.concept_id)).sum()
    got = r["concept_known.drug_exposure"]
    assert unknown > 0 and (got.violating, got.total) == (unknown, len(drugs))
    assert got.status == "WARN" and got.share == round(100 * unknown / len(drugs), 4)
    assert r["concept_known.condition_occurrence"].status == "PASS"
