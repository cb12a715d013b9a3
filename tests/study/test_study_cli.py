"""`follicle cohorts STUDY.yaml --db TARGET [--json]` on GiBleed: counts, suppression, bad specs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from follicle.cli import app
from follicle.privacy import suppress_count as suppress

HERE = Path(__file__).parent
runner = CliRunner()


def test_suppress():
    assert [suppress(n) for n in (0, 1, 9, 10, 11)] == [0, "<10", "<10", 10, 11]
    assert suppress(5, 5) == 5 and suppress(4, 5) == "<5"


def test_cohorts_json_counts_and_small_cells(gibleed_db, tmp_path):
    spec = yaml.safe_load((HERE / "gibleed_spec.yaml").read_text())
    # diclofenac new users aged 31-32 at index: 10 people; aged 46: 7 people (Book-of-OHDSI cohort by age)
    spec["cohorts"]["dic_31_32"] = {"entry": {"concept_set": "diclofenac"}, "prior_observation_days": 365,
                                    "age": {"min": 31, "max": 32}}
    spec["cohorts"]["dic_46"] = {"entry": {"concept_set": "diclofenac"}, "prior_observation_days": 365,
                                 "age": {"min": 46, "max": 46}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["cohorts", str(path), "--db", str(gibleed_db), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    last = {}
    for row in out["attrition"]:
        last[row["cohort"]] = row["persons"]
    assert last["celecoxib"] == 1800 and last["diclofenac"] == 830  # Book of OHDSI
    assert last["dic_31_32"] == 10
    assert last["dic_46"] == "<10"  # 7 people: suppressed
    comp = {r["step"]: r["persons"] for r in out["comparisons"]}
    assert comp["target"] == 1800 and comp["comparator"] == 830 and comp["time_at_risk"] == 2630
    counts = [r["persons"] for r in out["attrition"] + out["comparisons"]]
    assert not [c for c in counts if isinstance(c, int) and 1 <= c <= 9]


def test_cohorts_table_output(gibleed_db):
    result = runner.invoke(app, ["cohorts", str(HERE / "gibleed_spec.yaml"), "--db", str(gibleed_db)])
    assert result.exit_code == 0, result.output
    assert "1800" in result.stdout and "830" in result.stdout and "prior_obs" in result.stdout


def test_bad_spec_lists_every_problem_and_writes_nothing(gibleed_db, tmp_path):
    db = tmp_path / "cdm.duckdb"
    shutil.copy(gibleed_db, db)
    before = db.read_bytes()
    spec = yaml.safe_load((HERE / "gibleed_spec.yaml").read_text())
    spec["cohorts"]["celecoxib"]["entry"]["concept_set"] = "celecoxibb"
    spec["cohorts"]["diclofenac"]["prior_observation_days"] = -1
    spec["cohorts"]["diclofenac"]["exclude"] = [{"cohort": "diclofenac"}]
    spec["outcomes"]["gi_bleed"]["concept_set"] = "empty"
    spec["concept_sets"]["empty"] = {"domain": "condition", "include": []}
    spec["cohorts"]["celecoxib"]["colour"] = "red"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["cohorts", str(path), "--db", str(db)])
    assert result.exit_code == 2
    err = result.stderr
    for piece in ["bad.yaml", "cohorts.celecoxib.entry.concept_set: unknown concept set 'celecoxibb'",
                  "cohorts.diclofenac.prior_observation_days", "cohorts.diclofenac.exclude.0.cohort",
                  "outcomes.gi_bleed: outcome has no codes", "cohorts.celecoxib.colour"]:
        assert piece in err, piece
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "cdm.duckdb"]
    assert db.read_bytes() == before


def test_missing_database_is_one_clear_error(tmp_path):
    result = runner.invoke(app, ["cohorts", str(HERE / "gibleed_spec.yaml"), "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2
    assert "database file not found" in result.stderr
    assert not (tmp_path / "none.duckdb").exists()
