"""``follicle analyze match``: results as JSON, atomic output file, clear errors without traceback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

from follicle.cli import app

runner = CliRunner()


@pytest.fixture()
def csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 800
    df = pd.DataFrame({"age": rng.normal(50, 10, n).round(1), "female": rng.integers(0, 2, n)})
    df["jak"] = (rng.random(n) < expit(-2.5 + 0.04 * df.age + 0.5 * df.female)).astype(int)
    df["site"] = "A"
    path = tmp_path / "cohort.csv"
    df.to_csv(path, index=False)
    return path, df


def test_json_and_matched_csv(csv, tmp_path):
    path, df = csv
    out = tmp_path / "sub" / "matched.csv"
    res = runner.invoke(app, ["analyze", "match", str(path), "--treatment", "jak", "--covariates", "age,female",
                              "--order", "closest", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    terms = [c["term"] for c in body["propensity_model"]["coefficients"]]
    assert terms == ["(intercept)", "age", "female"]
    assert {"coef", "se", "z", "p"} <= set(body["propensity_model"]["coefficients"][1])
    m = body["matching"]
    assert m["n_treated"] == df.jak.sum() and m["order"] == "closest" and m["caliper"] == 0.1
    assert [b["covariate"] for b in body["balance"]] == ["age", "female"]
    assert all(b["status"] in ("PASS", "FAIL") for b in body["balance"])
    matched = pd.read_csv(out)
    assert len(matched) == 2 * m["n_pairs"]
    assert matched.groupby("set_id").jak.agg(["sum", "size"]).eq([1, 2]).all().all()
    assert {"propensity_score", "set_id", "match_weight"} <= set(matched.columns)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_seeded_random_order_is_reproducible(csv, tmp_path):
    path, _ = csv
    outs = []
    for name in ("a.csv", "b.csv"):
        res = runner.invoke(app, ["analyze", "match", str(path), "--treatment", "jak", "--covariates",
                                  "age,female", "--seed", "7", "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert "Covariate balance" in res.stdout
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("args, text", [
    (["--treatment", "jakx", "--covariates", "age,sex"], "'jakx', 'sex'"),
    (["--treatment", "jak", "--covariates", "age,site"], "'site' is not numeric"),
    (["--treatment", "female", "--covariates", "age,jak"], "single group"),
    (["--treatment", "jak", "--covariates", "age", "--caliper", "-1"], "'caliper'"),
    (["--treatment", "jak", "--covariates", "age,jak"], "cannot also be a covariate"),
])
def test_bad_input_exits_nonzero_without_traceback(csv, tmp_path, args, text):
    path, df = csv
    if text == "single group":
        df.assign(female=1).to_csv(path, index=False)
    out = tmp_path / "never.csv"
    res = runner.invoke(app, ["analyze", "match", str(path), *args, "--out", str(out)])
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert text in " ".join(res.output.split())
    assert not out.exists()


def test_separation_and_missing_values_are_named(csv):
    path, df = csv
    df.assign(prior=df.jak).to_csv(path, index=False)
    res = runner.invoke(app, ["analyze", "match", str(path), "--treatment", "jak", "--covariates", "age,prior"])
    assert res.exit_code == 2 and "'prior' separates the groups perfectly" in " ".join(res.output.split())
    df.assign(age=df.age.where(df.index != 3)).to_csv(path, index=False)
    res = runner.invoke(app, ["analyze", "match", str(path), "--treatment", "jak", "--covariates", "age"])
    assert res.exit_code == 2 and "'age' is empty on line 5" in " ".join(res.output.split())


def test_missing_file():
    res = runner.invoke(app, ["analyze", "match", "no/such.csv", "--treatment", "t", "--covariates", "a"])
    assert res.exit_code == 2 and "not found" in res.output
