"""`follicle synth` end to end on a small world, bad input, and the config as data."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from follicle.cli import app
from follicle.synth import WorldConfig, load_config

runner = CliRunner()


def test_cli_writes_cdm_and_truth(tmp_path):
    db, truth = tmp_path / "w.duckdb", tmp_path / "truth.json"
    res = runner.invoke(app, ["synth", "--persons", "3000", "--seed", "2", "--db", str(db), "--truth", str(truth),
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["rows"]["person"] == 3000 and db.exists()
    assert json.loads(truth.read_text())["persons"] == 3000
    # an existing target is refused without --overwrite, and left intact
    size = db.stat().st_size
    res = runner.invoke(app, ["synth", "--persons", "100", "--db", str(db)])
    assert res.exit_code == 2 and "exists" in res.output
    assert db.stat().st_size == size


def test_cli_rejects_bad_persons(tmp_path):
    res = runner.invoke(app, ["synth", "--persons", "0", "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code != 0
    assert not (tmp_path / "x.duckdb").exists()


def test_config_round_trips_json_and_yaml(tmp_path):
    cfg = WorldConfig()
    assert WorldConfig.model_validate_json(cfg.model_dump_json()) == cfg
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert load_config(path) == cfg


def test_config_names_bad_fields():
    data = WorldConfig().model_dump(mode="json")
    data["processes"][0]["log_hr"] = {"age_in_years": 0.1}
    data["disease"]["aa_prevalence"] = 1.5
    with pytest.raises(ValidationError) as exc:
        WorldConfig.model_validate(data)
    text = str(exc.value)
    assert "age_in_years" in text and "aa_prevalence" in text
