"""Vocabulary gaps are never silent (issue 16, point 1), on real OMOP samples.

* Synthea27Nj ships a CONCEPT of 2,294 rows, an empty CONCEPT_ANCESTOR and a CONCEPT_RELATIONSHIP
  that does not link its clinical drugs to their ingredients (prednisone 5 MG Oral Tablet,
  1551192, has only "Consists of" a component absent from CONCEPT). Before, ``RxNorm:prednisone``,
  ``RxNorm:methotrexate`` and ``RxNorm:cyclosporine`` found nobody; the RxNorm drug-name route
  finds them.
* GiBleed with CONCEPT_ANCESTOR and CONCEPT_RELATIONSHIP removed gives the same cohorts and
  analysis tables for the bundled specs, and the report names what could now be missed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest
from cdmdata import load_csv_cdm

from follicle.study.counts import cohort_counts, suppressed
from follicle.study.population import StudySession, build_population
from follicle.study.spec import load_spec, parse_spec

HERE = Path(__file__).parent
def _study_specs() -> list[Path]:
    """The bundled comparative study specs (studies/*.yaml that are study specs) and the GiBleed test specs."""
    from follicle.errors import SpecError

    found = []
    for path in sorted((HERE.parents[1] / "studies").glob("*.yaml")):
        try:
            load_spec(path)
        except SpecError:  # a response or meta-analysis spec: no cohorts to compare
            continue
        found.append(path)
    return [HERE / "gibleed_spec.yaml", HERE / "contract_spec.yaml", *found]


BUNDLED_SPECS = _study_specs()
# Synthea27Nj drug concepts (in its CONCEPT): prednisone 5 MG Oral Tablet, methotrexate 2.5 MG Oral
# Tablet, cyclosporine, modified 100 MG Oral Capsule (the only one with exposures in the sample)
PREDNISONE_5MG, METHOTREXATE_2_5MG, CYCLOSPORINE_100MG = 1551192, 19007332, 19010522
UNKNOWN_DRUG = 1_999_999_999  # a concept id absent from every vocabulary


@pytest.fixture(scope="module")
def synthea_db(synthea_dir, tmp_path_factory):
    """Synthea27Nj as loaded, plus one prednisone and one methotrexate exposure for persons 1 and 2
    (the sample has none) and one exposure to a concept missing from CONCEPT for person 3."""
    path = load_csv_cdm(synthea_dir, tmp_path_factory.mktemp("synthea") / "synthea.duckdb", version="5.4")
    con = duckdb.connect(str(path))
    try:
        for i, (person, concept) in enumerate(((1, PREDNISONE_5MG), (2, METHOTREXATE_2_5MG), (3, UNKNOWN_DRUG))):
            start = con.execute("SELECT observation_period_start_date + INTERVAL 400 DAY FROM observation_period "
                                "WHERE person_id = ?", [person]).fetchone()[0]
            con.execute("INSERT INTO drug_exposure (drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date,"
                        " drug_exposure_end_date, drug_type_concept_id, drug_source_concept_id) VALUES (?, ?, ?, ?, ?, 32869, 0)",
                        [90_000_000 + i, person, concept, start, start])
    finally:
        con.close()
    return path


SYNTHEA_SPEC = {
    "name": "synthea_drugs",
    "concept_sets": {
        "prednisone": {"include": ["RxNorm:prednisone"]},
        "prednisolone": {"include": ["RxNorm:prednisolone"]},
        "methotrexate": {"include": ["RxNorm:methotrexate"]},
        "cyclosporine": {"include": ["RxNorm:cyclosporine"]},
        "hypertension": {"include": ["ICD10CM:I10"]},
    },
    "cohorts": {n: {"entry": {"concept_set": n}} for n in ("prednisone", "prednisolone", "methotrexate", "cyclosporine",
                                                             "hypertension")},
    "comparisons": {"p_vs_m": {"target": "prednisone", "comparator": "methotrexate"}},
    "min_cell_count": 1,
}


def test_synthea_drugs_found_by_name(synthea_db):
    spec = parse_spec(SYNTHEA_SPEC)
    con = ibis.duckdb.connect(str(synthea_db), read_only=True)
    with StudySession(spec, con) as s:
        assert PREDNISONE_5MG in s.resolved["prednisone"].concept_ids
        assert METHOTREXATE_2_5MG in s.resolved["methotrexate"].concept_ids
        assert CYCLOSPORINE_100MG in s.resolved["cyclosporine"].concept_ids  # "cyclosporine, modified ... [Neoral]"
        assert PREDNISONE_5MG not in s.resolved["prednisolone"].concept_ids  # whole words only
        entry = {n: int(s.attrition(n).set_index("step").persons["entry"]) for n in spec.cohorts}
        report = s.concept_set_report()
    assert entry == {"prednisone": 1, "prednisolone": 0, "methotrexate": 1, "cyclosporine": 2, "hypertension": 5}
    routes = report.routes.set_index(["concept_set", "route"])
    # the drug-name route is what found them, and the report says so with its persons
    assert routes.loc[("prednisone", "drug name"), "persons"] == 1
    assert routes.loc[("cyclosporine", "drug name"), "persons"] == 2
    assert routes.loc[("cyclosporine", "drug name"), "rows"] == 3
    # hypertension: Synthea codes conditions in SNOMED; ICD-10-CM I10 reaches them through Maps to
    assert routes.loc[("hypertension", "mapped"), "persons"] == 5
    assert routes.loc[("hypertension", "source value"), "persons"] == 0
    # the exposure to a concept missing from CONCEPT could belong to any drug set: counted, per set
    sets = report.sets.set_index("concept_set")
    for name in ("prednisone", "prednisolone", "methotrexate", "cyclosporine"):
        assert sets.loc[name, "missed_rows"] == 1 and sets.loc[name, "unknown_rows"] == 1
        assert sets.loc[name, "by_vocabulary"] == {"not in CONCEPT": 1}
    assert sets.loc["hypertension", "missed_rows"] == 0


def test_synthea_cohorts_command_reports_the_gap(synthea_db):
    spec = parse_spec(SYNTHEA_SPEC | {"min_cell_count": 10})
    result = suppressed(cohort_counts(spec, ibis.duckdb.connect(str(synthea_db), read_only=True)), 10)
    text = "\n".join(result["warnings"])
    assert "concept set 'prednisone': <10 drug_exposure rows (<10 persons) have concepts the vocabulary cannot" in text
    assert "not in CONCEPT <10" in text
    assert "no concept_ancestor; descendants from" in text and "drug name" in text
    sets = {r["concept_set"]: r for r in result["concept_sets"]["sets"]}
    assert sets["cyclosporine"]["persons"] == "<10" and sets["cyclosporine"]["hierarchy"] == "fallback"


@pytest.fixture(scope="module")
def stripped_gibleed(gibleed_db, tmp_path_factory):
    """A copy of GiBleed with CONCEPT_ANCESTOR and CONCEPT_RELATIONSHIP removed."""
    path = tmp_path_factory.mktemp("stripped") / "gibleed.duckdb"
    shutil.copy(gibleed_db, path)
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE concept_ancestor")
    con.execute("DROP TABLE concept_relationship")
    con.close()
    return path


@pytest.mark.parametrize("spec_path", BUNDLED_SPECS, ids=lambda p: p.stem)
def test_gibleed_without_hierarchy_same_cohorts_or_named_difference(gibleed_db, stripped_gibleed, spec_path):
    spec = load_spec(spec_path)
    full = cohort_counts(spec, ibis.duckdb.connect(str(gibleed_db), read_only=True))
    bare = cohort_counts(spec, ibis.duckdb.connect(str(stripped_gibleed), read_only=True))
    pd.testing.assert_frame_equal(bare["attrition"], full["attrition"])
    pd.testing.assert_frame_equal(bare["comparisons"], full["comparisons"])
    # with the hierarchy no set taking descendants could miss anything; without it, every such set
    # with events names the rows it can no longer classify. ICD-10-CM sets do not use the hierarchy:
    # the same either way (on GiBleed, coded in SNOMED, a set with a code that maps to nothing here
    # cannot classify any row, and says so).
    full_sets = full["concept_sets"].sets.set_index("concept_set")
    bare_sets = bare["concept_sets"].sets.set_index("concept_set")
    assert (full_sets.hierarchy.dropna() == "concept_ancestor").all()
    assert (full_sets.missed_rows[full_sets.hierarchy.notna()] == 0).all()
    assert (bare_sets.hierarchy.dropna() == "fallback").all()
    for name, row in bare_sets.iterrows():
        if row.hierarchy is None:
            assert row.missed_rows == full_sets.loc[name, "missed_rows"], name
        elif row.persons:
            assert row.missed_rows > 0, name
        if row.missed_rows:
            assert any(w.startswith(f"concept set {name!r}: ") and "could belong to the set" in w for w in bare["warnings"])
    # a set that finds fewer rows without the hierarchy reports at least that many as could-be-missed
    lost = full_sets.rows - bare_sets.rows
    assert (lost >= 0).all() and (lost <= bare_sets.missed_rows).all()


def test_gibleed_without_hierarchy_analysis_tables_differ_only_where_named(gibleed_db, stripped_gibleed):
    """The contract spec's sinusitis set (OMOP 4283893 and 257012 with descendants) finds 2 of its 4
    concepts without the hierarchy: its columns differ, every other column is identical, and the
    report names the set with the rows it could be missing."""
    spec = load_spec(HERE / "contract_spec.yaml")
    out, reports = [], []
    for path in (gibleed_db, stripped_gibleed):
        con = ibis.duckdb.connect(str(path), read_only=True)
        with StudySession(spec, con) as s:
            out.append({c: build_population(spec, con, c, session=s) for c in spec.comparisons})
            reports.append(s.concept_set_report().sets.set_index("concept_set"))
    differ = sorted(reports[0].index[reports[0].rows != reports[1].rows])
    assert differ == ["sinusitis"]
    assert reports[1].loc["sinusitis", "missed_rows"] >= reports[0].loc["sinusitis", "rows"] - reports[1].loc["sinusitis", "rows"]
    for c in spec.comparisons:
        full, bare = out[0][c].table, out[1][c].table
        same = [col for col in full.columns if "sinusitis" not in col]
        pd.testing.assert_frame_equal(bare[same], full[same])
        assert full.filter(like="_event").sum().sum() > 0  # outcomes were found in both


def test_cohorts_command_prints_the_resolution(synthea_db, tmp_path):
    import json

    from typer.testing import CliRunner

    from follicle.cli import app

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SYNTHEA_SPEC | {"min_cell_count": 10}))
    res = CliRunner().invoke(app, ["cohorts", str(spec), "--db", str(synthea_db), "--routes"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "concept sets: how each was resolved" in res.stdout and "drug name" in res.stdout
    assert "could be missed" in res.stdout and "concept sets: every route" in res.stdout
    assert "have concepts the vocabulary cannot classify" in " ".join(res.stderr.split())
    res = CliRunner().invoke(app, ["cohorts", str(spec), "--db", str(synthea_db), "--json"])
    out = json.loads(res.stdout)
    sets = {r["concept_set"]: r for r in out["concept_sets"]["sets"]}
    assert sets["prednisone"]["missed_rows"] == "<10" and sets["hypertension"]["missed_rows"] == 0
    assert any(r["route"] == "mapped" and r["persons"] == "<10" for r in out["concept_sets"]["routes"])
