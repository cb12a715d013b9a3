"""CLI: follicle salt and the response group, JSON shapes and bad-input exits."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from follicle.cli import app

runner = CliRunner()


def run(*args):
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr if hasattr(res, "stderr") else ""


def test_salt_json():
    code, out, _ = run("salt", "--top", 50, "--back", 20, "--left", 10, "--right", 0, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["salt"] == pytest.approx(0.4 * 50 + 0.24 * 20 + 0.18 * 10)
    assert d["aa_iga"] == 2
    code, out, _ = run("salt", "--top", 100, "--back", 100, "--left", 100, "--right", 100, "--eyebrow", 3, "--json")
    assert json.loads(out)["eyebrow_clinro"] == 3 and json.loads(out)["aa_iga"] == 4
    res = runner.invoke(app, ["salt", "--top", "1", "--back", "0", "--left", "0", "--right", "0", "--eyelash", "4"])
    assert res.exit_code == 2 and "--eyelash must be a ClinRO score 0-3" in res.output


def test_salt_region_120_fails_clearly():
    res = runner.invoke(app, ["salt", "--top", "120", "--back", "0", "--left", "0", "--right", "0"])
    assert res.exit_code == 2
    assert "--top must be a percentage in [0, 100]; got 120" in res.output


@pytest.fixture
def pilot(tmp_path):
    """Twelve patients shaped like the ruxolitinib pilot (mission.md section 5): 9 responders."""
    rows = []
    for i in range(12):
        resp = i < 9
        end = 4 if resp else 70
        for m, salt, on in ((0, 80, 1), (3, 40 if resp else 75, 1), (6, end, 1), (9, end + 10, 0)):
            rows.append((f"P{i:02d}", f"2023-{1 + m:02d}-15", salt, on))
    p = tmp_path / "visits.csv"
    pd.DataFrame(rows, columns=["patient_id", "date", "salt", "on_drug"]).to_csv(p, index=False)
    return p


def test_single_arm_pilot(pilot, tmp_path):
    png = tmp_path / "s.png"
    code, out, _ = run("response", "single-arm", pilot, "--json", "--min-cell-count", 1, "--allow-small-cells", "--plot", png)
    assert code == 0, out
    d = json.loads(out)
    rr = d["responder_rate"]
    assert (rr["responders"], rr["n"]) == (9, 12)
    assert rr["ci_low"] == pytest.approx(0.4281415, abs=1e-7)  # exact CI of 9/12 (see test_single_arm)
    assert d["regrowth_responders"]["mean"] == pytest.approx(95.0)
    assert png.stat().st_size > 1000
    # default min cell count 10: 9 responders leave the machine as "<10"
    code, out, _ = run("response", "single-arm", pilot, "--json")
    rr = json.loads(out)["responder_rate"]
    assert rr["responders"] == "<10"
    assert rr["rate"] is None and rr["ci_low"] is None  # 0.75 x 12 would give the 9 back


def test_single_arm_bad_visits(tmp_path):
    p = tmp_path / "v.csv"
    p.write_text("patient_id,date,salt,on_drug\nA,2023-01-01,,1\nA,2023-05-01,30,1\n")
    res = runner.invoke(app, ["response", "single-arm", str(p)])
    assert res.exit_code == 2
    assert "row 2, column 'salt'" in res.output and "no baseline" in res.output


def patients(tmp_path, n=80, seed=3):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"patient_id": range(n), "age": rng.normal(40, 10, n).round(1),
                      "sex": rng.choice(["female", "male"], n), "ivmp": rng.integers(0, 2, n)})
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-(0.5 * d.ivmp - 0.5 * (d.sex == "male")))))
    p = tmp_path / "patients.csv"
    d.to_csv(p, index=False)
    return p


def test_predictors_json_terms(tmp_path):
    p = patients(tmp_path)
    code, out, _ = run("response", "predictors", p, "--outcome", "y", "--predictors", "age,sex,ivmp",
                       "--reference", "sex=female", "--json")
    assert code == 0, out
    d = json.loads(out)
    terms = {t["term"]: t for t in d["terms"]}
    assert set(terms) == {"(Intercept)", "age", "sex[male]", "ivmp"}
    for t in terms.values():
        assert {"term", "coef", "se", "or", "ci_low", "ci_high", "p"} <= set(t)
        assert t["ci_low"] < t["or"] < t["ci_high"]
    assert terms["sex[male]"]["reference"] == "female"
    code, out, _ = run("response", "predictors", p, "--outcome", "y", "--predictors", "age,ivmp", "--firth", "--json")
    assert json.loads(out)["method"].startswith("firth")


def test_predictors_one_class_and_missing(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("patient_id,age,y\n1,30,1\n2,40,1\n3,50,1\n")
    res = runner.invoke(app, ["response", "predictors", str(p), "--outcome", "y", "--predictors", "age"])
    assert res.exit_code == 2 and "one class" in res.output
    p.write_text("patient_id,age,y\n1,30,1\n2,,0\n3,50,1\n")
    res = runner.invoke(app, ["response", "predictors", str(p), "--outcome", "y", "--predictors", "age"])
    assert res.exit_code == 2 and "one.csv: row 3, column 'age': missing value" in res.output


def test_safety_aggregate_source4(tmp_path):
    # mission.md section 4: herpes zoster 34 cases in 1,868 patient-years -> 1.8 per 100 PY
    p = tmp_path / "events.csv"
    p.write_text("event_type,events,person_years\nherpes zoster,34,1868\n")
    code, out, _ = run("response", "safety", p, "--json")
    assert code == 0
    r = json.loads(out)["rates"][0]
    assert round(r["rate"], 1) == 1.8
    assert r["ci_low"] < r["rate"] < r["ci_high"]


def test_safety_patient_level(tmp_path):
    ev = tmp_path / "ev.csv"
    ev.write_text("patient_id,event_type,date\nA,zoster,2023-02-01\nB,zoster,2023-03-01\nB,infection,2024-06-01\n")
    ex = tmp_path / "ex.csv"
    ex.write_text("patient_id,start_date,end_date\nA,2023-01-01,2023-12-31\nB,2023-01-01,2023-06-30\n")
    code, out, _ = run("response", "safety", ev, "--exposure", ex, "--json", "--min-cell-count", 1, "--allow-small-cells")
    rates = {r["event_type"]: r for r in json.loads(out)["rates"]}
    assert rates["zoster"]["events"] == 2 and rates["infection"]["events"] == 0  # outside exposure
    assert rates["zoster"]["person_years"] == pytest.approx((365 + 181) / 365.25)
    res = runner.invoke(app, ["response", "safety", str(ev)])
    assert res.exit_code == 2 and "--person-years or --exposure" in res.output


def test_predictors_from_visits(tmp_path, pilot):
    pts = tmp_path / "patients.csv"
    pd.DataFrame({"patient_id": [f"P{i:02d}" for i in range(12)], "age": np.arange(30, 42),
                  "ivmp": [1, 0] * 6}).to_csv(pts, index=False)
    code, out, _ = run("response", "predictors", pts, "--visits", pilot, "--outcome", "regrowth_pct",
                       "--predictors", "age,ivmp", "--response", "salt50", "--json", "--min-cell-count", 1, "--allow-small-cells")
    assert code == 0, out
    d = json.loads(out)
    assert d["kind"] == "linear" and d["n"] == 12 and "end of treatment" in d["endpoint_definition"]
    code, out, _ = run("response", "predictors", pts, "--visits", pilot, "--outcome", "responder",
                       "--predictors", "age", "--firth", "--json")
    assert code == 0 and json.loads(out)["kind"] == "logistic"
    # a patient with no visits has no baseline: named by row
    pd.DataFrame({"patient_id": ["P00", "X99"], "age": [30, 40]}).to_csv(pts, index=False)
    res = runner.invoke(app, ["response", "predictors", str(pts), "--visits", str(pilot), "--outcome", "responder",
                              "--predictors", "age"])
    assert res.exit_code == 2 and "row 3, column 'patient_id'" in res.output and "missing baseline" in res.output
