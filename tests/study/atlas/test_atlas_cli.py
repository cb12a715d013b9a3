"""``follicle atlas generate`` and ``follicle atlas export`` on GiBleed: files, JSON summary,
small-cell suppression, refusals by JSON path, nothing half-written."""

from __future__ import annotations

import json

import pandas as pd
from atlas_defs import HERE
from typer.testing import CliRunner

from follicle.cli import app

runner = CliRunner()


def _flat(text: str) -> str:
    """Rich wraps long lines at the terminal width, at a space or inside a word (where depends on
    the length of the temporary path): compare without whitespace."""
    return "".join(text.split())
SPEC = HERE.parent / "gibleed_spec.yaml"


def test_generate_writes_rows_attrition_and_json(gibleed_full_db, tmp_path):
    defs = [HERE / "ohdsi/GIBleed_male.json", HERE / "ohdsi/celecoxibAge40Male.json"]
    out = tmp_path / "out"
    result = runner.invoke(app, ["atlas", "generate", *map(str, defs), "--db", str(gibleed_full_db), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["definitions"]
    assert [s["name"] for s in summary] == ["GIBleed_male", "celecoxibAge40Male"]
    male = summary[0]
    assert male["entries"] == male["persons"] == 237  # as Circe's SQL gives (test_atlas_circe_oracle.py)
    assert [r["name"] for r in male["rules"]] == ["Male", "30 days prior observation"]
    assert [r["remaining_persons"] for r in male["rules"]] == [237, 237]
    assert male["qualified"] == {"events": 479, "persons": 479}  # GiBleed: 479 persons with GI bleed
    rows = pd.read_csv(out / "GIBleed_male.csv")
    assert list(rows.columns) == ["subject_id", "cohort_start_date", "cohort_end_date"]
    assert len(rows) == 237 and rows.subject_id.is_unique
    attrition = pd.read_csv(out / "GIBleed_male.attrition.csv")
    assert attrition.persons.tolist() == [479, 237, 237, 237]
    assert (out / "celecoxibAge40Male.csv").exists() and not list(out.glob(".*tmp*"))


def test_generate_suppresses_small_counts(gibleed_full_db, tmp_path):
    d = json.loads((HERE / "ohdsi/celecoxibAge40Male.json").read_text())
    d["InclusionRules"][0]["expression"]["DemographicCriteriaList"][0]["Age"] = {"Value": 46, "Op": "gt"}  # 2 persons
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d))
    result = runner.invoke(app, ["atlas", "generate", str(path), "--db", str(gibleed_full_db), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)["definitions"][0]
    rows = pd.read_csv(tmp_path / "old.csv")
    assert 0 < len(rows) < 10 and s["persons"] == "<10" and s["entries"] == "<10"
    result = runner.invoke(app, ["atlas", "generate", str(path), "--db", str(gibleed_full_db), "--out", str(tmp_path),
                                 "--json", "--min-cell-count", "1"])
    assert json.loads(result.stdout)["definitions"][0]["persons"] == len(rows)


def test_unsupported_element_refused_and_nothing_written(gibleed_full_db, tmp_path):
    good = HERE / "ohdsi/GIBleed_male.json"
    d = json.loads(good.read_text())
    d["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"]["ProviderSpecialty"] = [{"CONCEPT_ID": 38004446}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    out = tmp_path / "out"
    result = runner.invoke(app, ["atlas", "generate", str(good), str(bad), "--db", str(gibleed_full_db), "--out", str(out)])
    assert result.exit_code == 2
    assert _flat("$.PrimaryCriteria.CriteriaList[0].ConditionOccurrence.ProviderSpecialty") in _flat(result.output)
    assert "Traceback" not in result.output and not out.exists()


def test_missing_definition_and_database(tmp_path):
    result = runner.invoke(app, ["atlas", "generate", str(tmp_path / "nope.json"), "--db", str(tmp_path / "x.duckdb"),
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2 and _flat("nope.json: file not found") in _flat(result.output)
    result = runner.invoke(app, ["atlas", "generate", str(HERE / "ohdsi/GIBleed_male.json"), "--db",
                                 str(tmp_path / "x.duckdb"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and _flat("database file not found") in _flat(result.output)


def test_export_cli_and_refusals(gibleed_full_db, tmp_path):
    out = tmp_path / "celecoxib.json"
    result = runner.invoke(app, ["atlas", "export", str(SPEC), "--cohort", "celecoxib", "--db", str(gibleed_full_db),
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(out.read_text())
    assert d["PrimaryCriteria"]["ObservationWindow"]["PriorDays"] == 365
    result = runner.invoke(app, ["atlas", "export", str(SPEC), "--cohort", "nope", "--db", str(gibleed_full_db),
                                 "--out", str(out)])
    assert result.exit_code == 2 and _flat("no cohort 'nope'") in _flat(result.output)
