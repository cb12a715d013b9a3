"""``follicle vocab load``: an Athena download (tab-separated, dates YYYYMMDD, no quoting) added to an
existing CDM, atomically; on DuckDB and PostgreSQL. The download is GiBleed's own vocabulary
written the way Athena writes it, loaded into GiBleed without its vocabulary tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest
from typer.testing import CliRunner

from follicle.cdm.load import load_cdm
from follicle.cdm.vocabulary import load_vocabulary
from follicle.cli import app
from follicle.errors import DatabaseError, InputError
from follicle.study.counts import cohort_counts
from follicle.study.spec import load_spec

TABLES = ["concept", "concept_relationship", "concept_ancestor", "vocabulary", "domain", "relationship", "concept_synonym"]
SPEC = load_spec(Path(__file__).parents[1] / "study" / "contract_spec.yaml")


def athena_folder(gibleed_dir: Path, out: Path) -> Path:
    """GiBleed's vocabulary tables as an Athena download: upper-case names, tabs, dates YYYYMMDD."""
    out.mkdir()
    for t in TABLES:
        df = pd.read_csv(gibleed_dir / f"{t}.csv", dtype=str, keep_default_na=False)
        for c in df.columns:
            if c.endswith("_date"):
                df[c] = df[c].str.replace("-", "")
        df.to_csv(out / f"{t.upper()}.csv", sep="\t", index=False, quoting=3)
    (out / "CONCEPT_CPT4.csv").write_text("concept_id\n")  # in every download; not a CDM table
    return out


@pytest.fixture(scope="module")
def gibleed(gibleed_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("vocab")
    full = root / "full.duckdb"
    load_cdm(gibleed_dir, full)
    bare = root / "bare.duckdb"
    shutil.copy(full, bare)
    con = duckdb.connect(str(bare))
    for t in ("concept_ancestor", "concept_relationship"):
        con.execute(f"DROP TABLE {t}")
    con.execute("DELETE FROM concept")
    con.close()
    return full, bare, athena_folder(gibleed_dir, root / "athena")


def _rows(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES if t in present}
    finally:
        con.close()


def test_load_into_duckdb_restores_the_vocabulary(gibleed, tmp_path):
    full, bare, athena = gibleed
    target = tmp_path / "cdm.duckdb"
    shutil.copy(bare, target)
    result = load_vocabulary(athena, target)
    assert result.rows == _rows(full) and result.rows["concept_ancestor"] == 65690
    assert sorted(result.created) == ["concept_ancestor", "concept_relationship"]
    assert result.skipped_files == ["CONCEPT_CPT4.csv"] and "drug_strength" in result.kept
    con = duckdb.connect(str(target), read_only=True)
    name, start = con.execute("SELECT concept_name, valid_start_date FROM concept WHERE concept_id = 1118088").fetchone()
    con.close()
    assert name == "celecoxib 200 MG Oral Capsule [Celebrex]" and str(start) == "1970-01-01"
    # the study sees the same vocabulary: same cohorts, and nothing could be missed
    a = cohort_counts(SPEC, ibis.duckdb.connect(str(full), read_only=True))
    b = cohort_counts(SPEC, ibis.duckdb.connect(str(target), read_only=True))
    pd.testing.assert_frame_equal(a["attrition"], b["attrition"])
    assert (b["concept_sets"].sets.hierarchy == "concept_ancestor").all()
    assert b["concept_sets"].sets.missed_rows.sum() == 0


def test_a_bad_file_changes_nothing_and_names_line_and_column(gibleed, tmp_path):
    _, bare, athena = gibleed
    broken = tmp_path / "athena"
    shutil.copytree(athena, broken)
    lines = (broken / "CONCEPT_ANCESTOR.csv").read_text().splitlines()
    fields = lines[3].split("\t")
    lines[3] = "\t".join([*fields[:2], "two", *fields[3:]])
    (broken / "CONCEPT_ANCESTOR.csv").write_text("\n".join(lines) + "\n")
    target = tmp_path / "cdm.duckdb"
    shutil.copy(bare, target)
    before = _rows(target)
    with pytest.raises(InputError) as err:
        load_vocabulary(broken, target)
    assert "CONCEPT_ANCESTOR.csv" in str(err.value) and "nothing was changed" in str(err.value)
    assert err.value.problems == ["CONCEPT_ANCESTOR.csv, line 4, column min_levels_of_separation: 'two' is not integer"]
    assert _rows(target) == before  # concept (emptied before) is still empty: the transaction was rolled back


def test_refusals(gibleed, tmp_path):
    _, _, athena = gibleed
    with pytest.raises(DatabaseError, match="no CDM at"):
        load_vocabulary(athena, tmp_path / "missing.duckdb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no CONCEPT.csv"):
        load_vocabulary(tmp_path / "empty", tmp_path / "x.duckdb")
    duckdb.connect(str(tmp_path / "nocdm.duckdb")).close()
    with pytest.raises(DatabaseError, match="no person table"):
        load_vocabulary(athena, tmp_path / "nocdm.duckdb")


def test_cli_json(gibleed, tmp_path):
    _, bare, athena = gibleed
    target = tmp_path / "cdm.duckdb"
    shutil.copy(bare, target)
    res = CliRunner().invoke(app, ["vocab", "load", str(athena), "--db", str(target), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"]["concept"] == 444
    res = CliRunner().invoke(app, ["vocab", "load", str(tmp_path / "nowhere"), "--db", str(target), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["error"].startswith("source not found")


def test_load_into_postgres(gibleed, pg_url, tmp_path):
    import psycopg

    from follicle.cdm.write import init_cdm

    _, _, athena = gibleed
    schema = f"follicle_vocab_{tmp_path.name[-8:].lower()}".replace("-", "_")
    url = f"{pg_url.rstrip('/')}/{schema}"
    init_cdm(url, version="5.4")
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {schema}.concept_ancestor")  # a CDM without it: created by the load
        result = load_vocabulary(athena, url)
        assert result.rows["concept_ancestor"] == 65690 and "concept_ancestor" in result.created
        with psycopg.connect(pg_url) as conn:
            n = conn.execute(f"SELECT count(*) FROM {schema}.concept_ancestor").fetchone()[0]
            name = conn.execute(f"SELECT concept_name FROM {schema}.concept WHERE concept_id = 1118088").fetchone()[0]
        assert n == 65690 and name == "celecoxib 200 MG Oral Capsule [Celebrex]"
        # a bad file: the earlier tables of the same load are not replaced either
        broken = tmp_path / "athena"
        shutil.copytree(athena, broken)
        (broken / "VOCABULARY.csv").write_text("vocabulary_id\tvocabulary_name\tvocabulary_concept_id\nX\tx\tnot-a-number\n")
        with pytest.raises(InputError, match="VOCABULARY.csv"):
            load_vocabulary(broken, url)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute(f"SELECT count(*) FROM {schema}.vocabulary").fetchone()[0] == 125
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
