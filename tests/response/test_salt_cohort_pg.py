"""The CDM route on PostgreSQL gives the same analysis as on DuckDB (same Ibis expressions)."""

import uuid

import duckdb
import ibis
import pytest

import cdm_world
from follicle.cdm import schema as cdm_schema
from follicle.study.salt_cohort import load_spec, run_study
from test_salt_cohort import SPEC


@pytest.mark.postgres
def test_postgres_equals_duckdb(pg_url, tmp_path):
    db = tmp_path / "w.duckdb"
    cdm_world.build(db, n=300, seed=3)
    src = duckdb.connect(str(db), read_only=True)
    pg = ibis.connect(pg_url)
    name = f"follicle_response_{uuid.uuid4().hex[:10]}"
    pg.create_database(name)
    try:
        for stmt in cdm_schema.create_statements("5.4", "postgres", schema=name):
            pg.raw_sql(stmt).close()
        for table in ("person", "observation_period", "condition_occurrence", "drug_exposure", "measurement",
                      "concept_ancestor"):
            df = src.execute(f"SELECT * FROM {table}").df()
            pg.insert(table, df[[c for c in df.columns if df[c].notna().any()]], database=name)
        spec = load_spec(SPEC)
        on_pg = run_study(spec, pg_url, schema=name)
    finally:
        pg.raw_sql(f'DROP SCHEMA "{name}" CASCADE').close()
        pg.disconnect()
        src.close()
    on_duck = run_study(spec, str(db))
    assert on_pg["attrition"] == on_duck["attrition"]
    assert on_pg["outcome"]["events"] == on_duck["outcome"]["events"]
    for a, b in zip(on_pg["logistic"]["terms"], on_duck["logistic"]["terms"]):
        assert a["term"] == b["term"]
        assert a["coef"] == pytest.approx(b["coef"], rel=1e-9, abs=1e-12)
    assert "***" in on_pg["target"] or "follicle:" not in on_pg["target"]  # password redacted
