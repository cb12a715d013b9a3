"""``follicle analyze survival``: JSON keys, agreement with the library, clear errors (no traceback)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from follicle.cli import app
from follicle.survival import CoxPH, kaplan_meier_by_group, logrank_test
from survdata import matched_cohort

runner = CliRunner()


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    d = matched_cohort(seed=13)
    d["arm"] = d["treat"].map({1: "jaki", 0: "control"})
    path = tmp_path_factory.mktemp("cli") / "cohort.csv"
    d.to_csv(path, index=False)
    return path


def invoke(*args: str):
    return runner.invoke(app, ["analyze", "survival", *map(str, args)])


def test_json_output_matches_library(csv_path):
    res = invoke(csv_path, "--time", "time", "--event", "event", "--group", "arm", "--covariates", "age,sex",
                 "--ties", "breslow", "--json", "--min-cell-count", "1", "--allow-small-cells")  # exact, local use
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    d = pd.read_csv(csv_path)
    model = CoxPH(ties="breslow").fit(d[["treat", "age", "sex"]], d["time"], d["event"])
    coefs = {r["term"]: r for r in out["cox"]["coefficients"]}
    assert set(coefs) == {"arm=jaki", "age", "sex"}
    assert set(coefs["age"]) >= {"coef", "se", "hr", "ci_low", "ci_high", "p"}
    assert coefs["arm=jaki"]["coef"] == pytest.approx(model.coef_[0], rel=1e-12)
    assert coefs["arm=jaki"]["se"] == pytest.approx(model.se_[0], rel=1e-12)
    assert out["logrank"]["chisq"] == pytest.approx(logrank_test(d["time"], d["event"], d["arm"]).chisq)
    curves = kaplan_meier_by_group(d["time"], d["event"], d["arm"])
    km = {r["group"]: r for r in out["kaplan_meier"]}
    assert km["jaki"]["median"] == curves["jaki"].median
    assert len(km["jaki"]["curve"]) == len(curves["jaki"].table)
    nar = {g["group"]: g["n_risk"] for g in out["numbers_at_risk"]["groups"]}
    grid = out["numbers_at_risk"]["time"]
    assert nar["jaki"] == [int(((d.arm == "jaki") & (d.time >= g)).sum()) for g in grid]
    ph = {r["term"]: r for r in out["ph_test"]["terms"]}
    assert set(ph) == {"arm", "age", "sex", "GLOBAL"} and all("chisq" in r and "p" in r for r in ph.values())


def test_table_output(csv_path):
    res = invoke(csv_path, "--time", "time", "--event", "event", "--group", "treat")
    assert res.exit_code == 0, res.output
    assert "Log-rank" in res.stdout and "Cox proportional hazards" in res.stdout and "GLOBAL" in res.stdout


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (None, ("--time", "tim", "--event", "event"), "column not found: 'tim'"),
        (lambda d: d.assign(time=d["time"].astype(str).where(d.index != 3, "soon")), ("--time", "time", "--event", "event"),
         "column 'time' must hold numeric times"),
        (lambda d: d.assign(time=-d["time"]), ("--time", "time", "--event", "event"), "column 'time' must hold times >= 0"),
        (lambda d: d.assign(event=0), ("--time", "time", "--event", "event", "--group", "treat"),
         "column 'event' has no events"),
        (lambda d: d.assign(treat=1), ("--time", "time", "--event", "event", "--group", "treat"),
         "column 'treat' must have at least 2 distinct groups"),
    ],
)
def test_bad_input_is_one_clear_message(csv_path, tmp_path, change, args, message):
    path = csv_path
    if change is not None:
        path = tmp_path / "bad.csv"
        change(pd.read_csv(csv_path)).to_csv(path, index=False)
    res = invoke(path, *args)
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_missing_file(tmp_path):
    res = invoke(tmp_path / "nope.csv", "--time", "t", "--event", "e")
    assert res.exit_code == 2 and "file not found" in res.output


def test_followup_rates_and_window_risks(csv_path):
    res = invoke(csv_path, "--time", "time", "--event", "event", "--group", "arm", "--window", "6", "--json",
                 "--min-cell-count", "1", "--allow-small-cells")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    d = pd.read_csv(csv_path)
    crude = out["risk_at_window"]["crude"]
    assert crude["estimator"] == "crude" and crude["treated"]["arm"] == "jaki"
    hit = (d.event == 1) & (d.time <= 6)
    assert crude["treated"]["risk"] == pytest.approx(hit[d.arm == "jaki"].mean())
    assert {"rd", "rr", "or", "rd_ci_low", "or_ci_high"} <= set(crude)
    assert out["risk_at_window"]["km"]["estimator"] == "km"
    rates = {r["group"]: r for r in out["incidence_per_1000_person_years"]}
    sub = d[d.arm == "control"]
    assert rates["control"]["rate"] == pytest.approx(sub.event.sum() / (sub.time.sum() / 365.25) * 1000)
    fu = {r["group"]: r for r in out["followup"]}
    assert fu["control"]["median"] == pytest.approx(sub.time.median())


@pytest.mark.parametrize("extra", [[], ["--min-cell-count", "10"]])
def test_suppression_is_on_by_default_and_curves_are_rounded(csv_path, extra):
    res = invoke(csv_path, "--time", "time", "--event", "event", "--group", "arm", "--json", *extra)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["min_cell_count"] == 10 and "privacy_warning" not in out
    curve = out["kaplan_meier"][0]["curve"]
    assert curve and all(row["n_event"] % 10 == 0 and row["n_risk"] % 10 == 0 and row["n_censor"] % 10 == 0
                         for row in curve)  # a step x at-risk gives a multiple of 10 only
    assert out["kaplan_meier"][0]["n"] == 150  # large counts are kept
    for g in out["numbers_at_risk"]["groups"]:
        assert all(v % 10 == 0 for v in g["n_risk"])
    plain = invoke(csv_path, "--time", "time", "--event", "event", "--group", "arm", *extra)
    assert plain.exit_code == 0 and "Kaplan-Meier" in plain.stdout


def test_small_min_cell_count_needs_the_flag_and_warns(csv_path):
    res = invoke(csv_path, "--time", "time", "--event", "event", "--min-cell-count", "3")
    assert res.exit_code == 2 and "--allow-small-cells" in res.output
    res = invoke(csv_path, "--time", "time", "--event", "event", "--min-cell-count", "3", "--allow-small-cells", "--json")
    assert res.exit_code == 0
    assert "weakened" in json.loads(res.stdout)["privacy_warning"]


def test_one_event_or_equal_times_give_a_message_not_a_traceback(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("time,event,group\n5,1,a\n6,0,b\n7,0,a\n8,0,b\n")
    equal = tmp_path / "equal.csv"
    equal.write_text("time,event,group\n5,1,a\n5,0,b\n5,1,a\n5,0,b\n5,1,b\n")
    for path in (one, equal):
        res = invoke(path, "--time", "time", "--event", "event", "--group", "group", "--json",
                     "--min-cell-count", "1", "--allow-small-cells")
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["ph_test"].get("estimable") is False or out["ph_test"]["terms"]
