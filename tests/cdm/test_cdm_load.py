"""Loading OMOP CSV/Parquet folders: row counts, case-insensitive names, 5.3 -> 5.4 renames."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import duckdb
import pytest

from follicle.cdm import schema
from follicle.cdm.connect import connect, list_tables
from follicle.cdm.load import load_cdm

# Source: ../shared/data/omop/README.md, "Rows per table" (Book of OHDSI, SuggestedAnswers.Rmd).
GIBLEED_ROWS = {
    "person": 2694, "observation_period": 5343, "visit_occurrence": 1037, "condition_occurrence": 65332,
    "drug_exposure": 67707, "procedure_occurrence": 37409, "measurement": 44053, "observation": 1477,
    "condition_era": 65719, "drug_era": 52508, "concept": 444, "concept_ancestor": 65690,
}


def _csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def test_gibleed_row_counts_match_readme(gibleed_load):
    db, result = gibleed_load
    for table, n in GIBLEED_ROWS.items():
        assert result.rows[table] == n, table
    con = connect(db, read_only=True)
    try:
        for table, n in GIBLEED_ROWS.items():
            assert con.table(table).count().execute() == n, table
    finally:
        con.disconnect()


def test_gibleed_53_columns_renamed_and_extra_file_skipped(gibleed_load, gibleed_dir):
    db, result = gibleed_load
    assert result.renamed_columns["visit_occurrence"]["admitting_source_concept_id"] == "admitted_from_concept_id"
    assert result.renamed_columns["visit_detail"]["visit_detail_parent_id"] == "parent_visit_detail_id"
    assert result.renamed_columns["cost"] == {"reveue_code_source_value": "revenue_code_source_value"}
    assert result.skipped_files == ["cohort_attribute.csv"]  # not a table of CDM 5.3 or 5.4
    assert result.ignored_columns == {}
    with duckdb.connect(str(db), read_only=True) as con:
        n = con.execute("SELECT count(admitted_from_concept_id) FROM visit_occurrence").fetchone()[0]
    with (gibleed_dir / "visit_occurrence.csv").open(newline="") as fh:
        expected = sum(1 for row in csv.DictReader(fh) if row["admitting_source_concept_id"] != "")
    assert n == expected > 0


def test_types_follow_ddl(gibleed_db):
    con = connect(gibleed_db, read_only=True)
    try:
        sch = con.table("drug_exposure").schema()
        assert sch["person_id"].is_integer() and sch["drug_exposure_start_date"].is_date()
        assert sch["drug_exposure_start_datetime"].is_timestamp() and sch["quantity"].is_decimal()
        assert sch["sig"].is_string()
    finally:
        con.disconnect()


def test_synthea_upper_case_files_load_with_file_row_counts(synthea_load, synthea_dir):
    db, result = synthea_load
    for path in synthea_dir.glob("*.csv"):
        assert result.rows[path.stem.lower()] == _csv_rows(path), path.name
    assert result.rows["person"] == 28  # ../shared/data/omop/README.md
    assert result.rows["concept_ancestor"] == 0
    assert result.renamed_columns == {} and result.skipped_files == []


def test_zip_and_parquet_sources_give_the_same_rows(synthea_dir, tmp_path):
    tables = ["PERSON", "OBSERVATION_PERIOD", "DRUG_EXPOSURE", "MEASUREMENT"]
    archive = tmp_path / "cdm.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for t in tables:
            zf.write(synthea_dir / f"{t}.csv", f"export/{t}.csv")
    pq = tmp_path / "parquet"
    pq.mkdir()
    with duckdb.connect() as con:
        for t in tables:
            con.execute(
                f"COPY (SELECT * FROM read_csv(?, all_varchar = true)) TO '{pq / t.lower()}.parquet' (FORMAT parquet)",
                [str(synthea_dir / f"{t}.csv")],
            )
        # a table may also be a folder of part files (Spark-style): measurement.parquet/part-*.parquet
        (pq / "measurement.parquet").unlink()
        (pq / "measurement.parquet").mkdir()
        for i, where in enumerate(("measurement_id % 2 = 0", "measurement_id % 2 = 1")):
            part = pq / "measurement.parquet" / f"part-{i}.parquet"
            con.execute(
                f"COPY (SELECT * FROM read_csv(?) WHERE {where}) TO '{part}' (FORMAT parquet)",
                [str(synthea_dir / "MEASUREMENT.csv")],
            )
    from_zip = load_cdm(archive, tmp_path / "z.duckdb")
    from_pq = load_cdm(pq, tmp_path / "p.duckdb")
    for t in tables:
        assert from_zip.rows[t.lower()] == from_pq.rows[t.lower()] == _csv_rows(synthea_dir / f"{t}.csv")
    with (synthea_dir / "PERSON.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = (sum(int(r["person_id"]) for r in rows), min(int(r["year_of_birth"]) for r in rows))
    for db in ("p.duckdb", "z.duckdb"):
        with duckdb.connect(str(tmp_path / db), read_only=True) as con:
            assert con.execute("SELECT sum(person_id), min(year_of_birth) FROM person").fetchone() == expected


def test_load_into_cdm_53_maps_names_back(gibleed_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for t in ("person", "observation_period", "visit_occurrence"):
        (src / f"{t}.csv").write_bytes((gibleed_dir / f"{t}.csv").read_bytes())
    result = load_cdm(src, tmp_path / "c53.duckdb", version="5.3")
    assert result.rows["visit_occurrence"] == 1037 and result.renamed_columns == {}
    con = connect(tmp_path / "c53.duckdb", read_only=True)
    try:
        assert "admitting_source_concept_id" in con.table("visit_occurrence").schema().names
        assert "episode" not in list_tables(con) and "attribute_definition" in list_tables(con)
    finally:
        con.disconnect()


def test_rename_map_is_the_ddl_diff():
    """The documented 5.3 -> 5.4 renames are exactly the columns dropped/added between the two DDLs."""
    v53, v54 = schema.tables("5.3"), schema.tables("5.4")
    for table in ("visit_occurrence", "visit_detail"):
        old = {c for c, _, _ in v53[table]} - {c for c, _, _ in v54[table]}
        new = {c for c, _, _ in v54[table]} - {c for c, _, _ in v53[table]}
        renames = {o: n for (t, o), n in schema.RENAMES_53_TO_54.items() if t == table}
        assert set(renames) == old and set(renames.values()) == new


def test_existing_target_is_not_replaced_without_overwrite(synthea_dir, tmp_path):
    from follicle.errors import DatabaseError

    db = tmp_path / "x.duckdb"
    db.write_bytes(b"keep me")
    with pytest.raises(DatabaseError, match="already exists"):
        load_cdm(synthea_dir, db)
    assert db.read_bytes() == b"keep me"
