"""An auxiliary analysis that fails never sinks the main result: CLI text, JSON, spec output, API.

Failures are forced two ways: naturally (too few studies, no informative table) and by making
an analysis raise the errors it can raise (non-convergence, a singular fit), so every one of
leave-one-out, influence, Egger, trim-and-fill and the tau2 CI is exercised.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import follicle.synthesis.auxiliary as auxiliary
import follicle.synthesis.pooling as pooling
from follicle.cli import app
from follicle.synthesis.auxiliary import NotEstimable, auxiliary_analyses
from follicle.synthesis.effect_sizes import generic_effects
from follicle.synthesis.pooling import meta_analysis
from synthesis.edge_data import OSC_EGGER

AUX = ("leave_one_out", "influence", "egger", "trimfill")
GEN = "study,estimate,se\n" + "".join(f"S{i},{0.1 * i - 0.3:.2f},{0.1 + 0.03 * i:.2f}\n" for i in range(1, 9))
OSC_CSV = OSC_EGGER.replace("m1i,sd1i,n1i,m2i,sd2i,n2i", "mean_t,sd_t,n_t,mean_c,sd_c,n_c")


def run(*args: str):
    return CliRunner().invoke(app, ["meta", *args])


def write(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_issue_case_oscillating_egger_does_not_sink_the_command(tmp_path):
    """The reported failure: 14 SMD studies, --method REML --json exited 2 because Egger's fit oscillated."""
    res = run(write(tmp_path, OSC_CSV), "--measure", "SMD", "--method", "REML", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["k"] == 14 and out["tau2"] > 0
    assert all(out[name]["estimable"] for name in AUX)
    assert "did not converge" in out["egger"]["notes"][0] and "bracketed" in out["egger"]["notes"][0]
    text = run(write(tmp_path, OSC_CSV), "--measure", "SMD", "--method", "REML")
    assert text.exit_code == 0 and "Egger's test" in text.stdout


def _boom(*args, **kwargs):
    raise ArithmeticError("Fisher scoring for tau2 did not converge in 1000 iterations")


@pytest.mark.parametrize("name, target", [("leave_one_out", "leave_one_out"), ("influence", "influence"),
                                          ("egger", "egger_test"), ("trimfill", "trim_and_fill")])
def test_each_failing_auxiliary_is_marked_and_the_rest_stands(tmp_path, monkeypatch, name, target):
    monkeypatch.setattr(auxiliary, target, _boom)
    forest, funnel = tmp_path / "f.svg", tmp_path / "u.svg"
    data = write(tmp_path, GEN)
    res = run(data, "--measure", "GEN", "--json", "--forest", str(forest), "--funnel", str(funnel))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert np.isfinite(out["estimate"]) and out["k"] == 8
    assert out[name] == {"estimable": False, "reason": "Fisher scoring for tau2 did not converge in 1000 iterations"}
    assert all(out[other]["estimable"] for other in AUX if other != name)
    assert forest.stat().st_size > 0 and funnel.stat().st_size > 0
    text = run(data, "--measure", "GEN")
    assert text.exit_code == 0
    assert "not estimable - Fisher scoring for tau2 did not converge" in " ".join(text.stdout.split())
    # API
    es = generic_effects(np.arange(8) * 0.1 - 0.2, 0.1 + 0.03 * np.arange(1, 9))
    aux = auxiliary_analyses(es, meta_analysis(es))
    assert isinstance(getattr(aux, name), NotEstimable) and list(aux.not_estimable()) == [name]


def test_failing_tau2_ci_keeps_the_pooled_estimate(tmp_path, monkeypatch):
    monkeypatch.setattr(pooling, "qprofile_tau2_ci", _boom)
    res = run(write(tmp_path, GEN), "--measure", "GEN", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["tau2_ci_low"] is None and "did not converge" in out["not_estimable"]["tau2_ci"]
    assert np.isfinite(out["estimate"]) and out["i2_ci_low"] is None
    text = run(write(tmp_path, GEN), "--measure", "GEN")
    assert "CI not estimable: Q-profile root finding failed" in " ".join(text.stdout.split())


def test_two_studies_pool_with_small_sample_analyses_not_estimable(tmp_path):
    spec = {"name": "two", "data": "d.csv", "measure": "GEN", "method": "DL", "grade": {"outcome": "x"}}
    write(tmp_path, "study,estimate,se\nA,0.1,0.2\nB,0.4,0.3\n", "d.csv")
    res = run("--spec", write(tmp_path, json.dumps(spec), "s.json"), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["overall"]["k"] == 2
    assert out["egger"] == {"estimable": False, "reason": "Egger's test needs at least 3 studies; got k = 2."}
    assert out["trimfill"]["estimable"] is False and "at least 3 studies" in out["trimfill"]["reason"]
    assert out["leave_one_out"]["estimable"] and len(out["leave_one_out"]["rows"]) == 2  # k = 1 refits
    assert out["influence"]["estimable"] and out["grade"]["estimable"]


def test_single_study_is_fitted_as_metafor(tmp_path):
    res = run(write(tmp_path, "study,estimate,se\nA,0.3,0.2\n"), "--measure", "GEN", "--knha", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["k"] == 1 and out["tau2"] == 0 and out["estimate"] == pytest.approx(0.3)
    assert out["knha"] is False and any("z-tests used" in n for n in out["notes"])
    assert "k = 1" in out["not_estimable"]["tau2_ci"]
    assert [s["weight"] for s in out["studies"]] == [100.0]
    assert not any(out[name]["estimable"] for name in AUX)


def test_mh_without_informative_table_reports_na_and_cmh(tmp_path):
    text = "study,events_t,total_t,events_c,total_c\nA,0,10,0,10\nB,0,20,0,20\nC,3,30,0,30\nD,5,40,0,40\n"
    data = write(tmp_path, text)
    forest, funnel = tmp_path / "f.png", tmp_path / "u.png"
    res = run(data, "--method", "MH", "--json", "--forest", str(forest), "--funnel", str(funnel))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["estimate"] is None and "no informative table" in out["not_estimable"]["estimate"]
    assert out["cmh"] > 0 and 0 < out["cmh_p"] < 1
    assert [s["study"] for s in out["studies"]] == ["A", "B", "C", "D"] and out["dropped"] == ["A", "B"]
    assert forest.exists() and not funnel.exists()
    assert "funnel plot not written" in res.output
    shown = run(data, "--method", "MH")
    assert "Pooled estimate not estimable" in " ".join(shown.stdout.split())
    spec = {"name": "na", "data": "data.csv", "measure": "OR", "method": "MH", "grade": {"outcome": "x"}}
    out = json.loads(run("--spec", write(tmp_path, json.dumps(spec), "s.json"), "--json").stdout)
    assert out["grade"]["estimable"] is False and "not estimable" in out["grade"]["reason"]


def test_no_study_left_is_refused_with_the_reason(tmp_path):
    data = write(tmp_path, "study,events_t,total_t,events_c,total_c\nA,0,10,0,10\nB,0,20,0,20\n")
    res = run(data, "--method", "DL", "--drop00")
    assert res.exit_code == 2 and "no study left after dropping double-zero studies (A, B)" in " ".join(res.output.split())
    res = run(data, "--method", "PETO")
    assert res.exit_code == 2 and "zero hypergeometric variance" in " ".join(res.output.split())
