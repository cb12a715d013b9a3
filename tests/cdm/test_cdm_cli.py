"""``follicle cdm`` commands end to end on DuckDB files."""

from __future__ import annotations

import json

import duckdb
from cdm_helpers import small_copy
from typer.testing import CliRunner

from follicle.cdm import schema
from follicle.cli import app

runner = CliRunner()


def test_init_creates_every_ddl_table_and_refuses_to_overwrite(tmp_path):
    db = tmp_path / "new.duckdb"
    result = runner.invoke(app, ["cdm", "init", "--db", str(db), "--cdm-version", "5.3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tables"] == list(schema.tables("5.3"))
    with duckdb.connect(str(db), read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert names == set(schema.tables("5.3"))
    again = runner.invoke(app, ["cdm", "init", "--db", str(db)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_bad_version_is_named(tmp_path):
    result = runner.invoke(app, ["cdm", "init", "--db", str(tmp_path / "x.duckdb"), "--cdm-version", "6.0"])
    assert result.exit_code == 2 and "--cdm-version must be one of 5.4, 5.3; got '6.0'" in result.output
    assert not (tmp_path / "x.duckdb").exists()


def test_check_and_summary_need_an_existing_database(tmp_path):
    for cmd in ("check", "summary"):
        result = runner.invoke(app, ["cdm", cmd, "--db", str(tmp_path / "none.duckdb")])
        assert result.exit_code == 2 and "database file not found" in result.output
        assert not (tmp_path / "none.duckdb").exists()


def test_load_check_summary_pipeline(synthea_dir, tmp_path):
    src = small_copy(synthea_dir, tmp_path / "src")
    db = tmp_path / "cdm.duckdb"
    loaded = runner.invoke(app, ["cdm", "load", str(src), "--db", str(db), "--json"])
    assert loaded.exit_code == 0, loaded.output
    rows = json.loads(loaded.stdout)["rows"]
    assert rows["person"] == 28 and rows["death"] == 3  # Synthea27Nj PERSON.csv and DEATH.csv
    table = runner.invoke(app, ["cdm", "load", str(src), "--db", str(db), "--overwrite"])
    assert table.exit_code == 0 and "drug_exposure" in table.output
    checked = runner.invoke(app, ["cdm", "check", "--db", str(db)])
    assert checked.exit_code == 0 and "PASS" in checked.output
    summary = runner.invoke(app, ["cdm", "summary", "--db", str(db)])
    assert summary.exit_code == 0 and "persons: 28" in summary.output
    fp = runner.invoke(app, ["cdm", "fingerprint", "--db", str(db), "--json"])
    assert len(json.loads(fp.stdout)["fingerprint"]) == 64


def test_help_everywhere():
    for cmd in ([], ["init"], ["load"], ["check"], ["summary"], ["fingerprint"]):
        result = runner.invoke(app, ["cdm", *cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
        assert "Usage" in result.output
