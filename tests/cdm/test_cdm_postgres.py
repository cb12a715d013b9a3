"""The same load, check, summary and fingerprint on PostgreSQL give the same numbers as on DuckDB."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
from cdm_helpers import pg_tables
from typer.testing import CliRunner

from follicle.cdm.check import run_checks
from follicle.cdm.connect import connect
from follicle.cdm.fingerprint import fingerprint
from follicle.cdm.pg import split_url
from follicle.cdm.summary import summarise
from follicle.cdm.write import write_cdm
from follicle.cli import app

pytestmark = pytest.mark.postgres
runner = CliRunner()


def _both(duck_db, pg_target, func):
    out = []
    for target in (duck_db, pg_target):
        con = connect(target, read_only=target == duck_db)
        try:
            out.append(func(con))
        finally:
            con.disconnect()
    return out


def test_same_rows(gibleed_load, gibleed_pg):
    (duck_db, duck_result), (pg_target, pg_result) = gibleed_load, gibleed_pg
    assert pg_result.rows == duck_result.rows
    assert pg_result.rows["drug_exposure"] == 67707  # README
    counts = _both(duck_db, pg_target, lambda con: {t: con.table(t).count().execute() for t in duck_result.rows})
    assert counts[0] == counts[1] == duck_result.rows


def test_same_checks(gibleed_db, gibleed_pg):
    """``follicle cdm check --json`` on PostgreSQL equals run_checks on the DuckDB copy."""
    con = connect(gibleed_db, read_only=True)
    try:
        duck = [r.model_dump() for r in run_checks(con)]
    finally:
        con.disconnect()
    result = runner.invoke(app, ["cdm", "check", "--db", gibleed_pg[0], "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["checks"] == duck and payload["fatal_failures"] == []
    flagged = {r["id"]: r["violating"] for r in payload["checks"] if r["status"] != "PASS"}
    assert flagged["primary_key_unique.drug_exposure"] == 67707 - 63323
    assert flagged["person_reference.observation_period"] == 2649
    assert flagged["within_observation.drug_exposure"] == 80


def test_same_summary_and_fingerprint(gibleed_db, gibleed_pg):
    duck, pg = _both(gibleed_db, gibleed_pg[0], lambda con: summarise(con).model_dump())
    assert pg == duck
    assert fingerprint(gibleed_pg[0]) == fingerprint(gibleed_db)


def test_write_cdm_and_init_on_postgres(pg_url):
    import psycopg
    from psycopg import sql

    schema = f"follicle_write_{uuid.uuid4().hex[:8]}"
    target = f"{pg_url.rstrip('/')}/{schema}"
    person = pd.DataFrame({"person_id": [1, 2], "gender_concept_id": [8507, 8532], "year_of_birth": [1980, 1990],
                           "race_concept_id": 0, "ethnicity_concept_id": 0})
    try:
        counts = write_cdm({"person": person}, target)
        assert counts == {"person": 2}
        con = connect(target)
        try:
            assert con.table("person").person_id.sum().execute() == 3
        finally:
            con.disconnect()
        from follicle.errors import DatabaseError

        with pytest.raises(DatabaseError, match="already holds CDM tables"):
            write_cdm({"person": person}, target)
        result = runner.invoke(app, ["cdm", "init", "--db", target, "--overwrite", "--json"])
        assert result.exit_code == 0, result.output
        assert "episode" in pg_tables(split_url(target)[0], schema)
        con = connect(target)
        try:
            assert con.table("person").count().execute() == 0
        finally:
            con.disconnect()
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
