"""Empty and degenerate data through the run (issue 16, point 3) and the report's wording (point 4),
on GiBleed: an empty cohort names the step where it emptied, covariates that do not vary and a
separating propensity model name the comparison, an outcome without events says so; the run
writes what it could, labels tell the cases apart and the exit code says whether everything was
estimated."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from follicle.cdm.load import load_cdm
from follicle.cli import app
from follicle.report.study_report import fmt_ci
from follicle.run.degenerate import NO_EVENTS, NOT_ESTIMABLE, SUPPRESSED, outcome_status, status_label
from follicle.run.narrative import methods_paragraph, time_at_risk_text, window_text
from follicle.run.study import run_study
from follicle.study.spec import Window, load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
BASE = {
    "name": "degenerate",
    "concept_sets": {
        "celecoxib": {"include": ["RxNorm:celecoxib"]},
        "diclofenac": {"include": ["RxNorm:diclofenac"]},
        "gi_bleed": {"domain": "condition", "include": ["OMOP:192671"]},
        "alopecia": {"include": ["ICD10CM:L63"]},
        "acute_sinusitis": {"domain": "condition", "include": ["OMOP:4283893"]},
    },
    "cohorts": {
        "celecoxib": {"entry": {"concept_set": "celecoxib"}, "prior_observation_days": 365},
        "diclofenac": {"entry": {"concept_set": "diclofenac"}, "prior_observation_days": 365},
        "celecoxib_aa": {"entry": {"concept_set": "celecoxib"}, "prior_observation_days": 365,
                         "require": [{"concept_set": "alopecia", "window": {"start": None, "end": 0}}]},
    },
    "outcomes": {"gi_bleed": {"concept_set": "gi_bleed"}, "alopecia": {"concept_set": "alopecia"},
                 "acute_sinusitis": {"concept_set": "acute_sinusitis"}},
    "time_at_risk": {"start_offset": 0, "end_offset": 99999},
    "comparisons": {
        "cel_vs_dic": {"target": "celecoxib", "comparator": "diclofenac",
                       "outcomes": ["gi_bleed", "alopecia", "acute_sinusitis"]},
        "aa_cel_vs_dic": {"target": "celecoxib_aa", "comparator": "diclofenac", "outcomes": ["gi_bleed"]},
    },
}


@pytest.fixture(scope="module")
def gibleed(gibleed_dir, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("gibleed") / "gibleed.duckdb"
    load_cdm(gibleed_dir, db)
    return db


@pytest.fixture(scope="module")
def done(gibleed, tmp_path_factory):
    return run_study(parse_spec(BASE), gibleed, tmp_path_factory.mktemp("out"))


def _comparison(results, name):
    return next(c for c in results["comparisons"] if c["id"] == name)


def test_empty_cohort_names_the_cohort_and_the_step(done):
    comp = _comparison(done.results, "aa_cel_vs_dic")
    assert comp["status"] == NOT_ESTIMABLE
    assert re.fullmatch(r"cohort 'celecoxib_aa' \(target of 'aa_cel_vs_dic'\) is empty: 1,800 persons before step "
                        r"'require_0' \(has alopecia from any time to day 0 relative to index\), none after it",
                        comp["status_reason"]), comp["status_reason"]
    # what could be computed is kept: the attrition down to the empty step, and the comparator
    steps = {(a["cohort"], a["step"]): a["count"] for a in comp["attrition"]}
    assert steps[("celecoxib_aa", "prior_obs")] == 1800 and steps[("celecoxib_aa", "require_0")] == 0
    assert steps[("diclofenac", "prior_obs")] == 830
    assert {o["status"] for o in comp["outcomes"]} == {NOT_ESTIMABLE} and comp["table1"] == []
    assert not done.results["complete"]
    assert comp["status_reason"] in done.results["not_estimated"]
    assert {o["label"] for o in comp["outcomes"]} == {"not estimable (cohort celecoxib_aa empty after step require_0)"}


def test_outcome_labels_tell_the_cases_apart(done):
    comp = _comparison(done.results, "cel_vs_dic")
    assert comp["status"] == "estimated"
    by = {o["outcome"]: o for o in comp["outcomes"]}
    assert by["gi_bleed"]["status"] == "estimated" and by["gi_bleed"]["label"] == "" and by["gi_bleed"]["hr"] > 1
    assert by["alopecia"]["status"] == NO_EVENTS and by["alopecia"]["label"] == "no events"
    assert by["alopecia"]["events_target"] == 0 and by["alopecia"].get("hr") is None
    assert by["alopecia"]["status_reason"] == "none in the time at risk"
    assert "cel_vs_dic, alopecia: no events (none in the time at risk)" in done.results["not_estimated"]
    sinusitis = by["acute_sinusitis"]  # a handful of events: estimated, then withheld
    assert sinusitis["status"] == SUPPRESSED and sinusitis["label"] == "suppressed (<10)", sinusitis
    assert sinusitis["hr"] is None and "hr" in sinusitis["withheld"]


def test_attrition_continues_through_matching(done):
    comp = _comparison(done.results, "cel_vs_dic")
    steps = [a["step"] for a in comp["attrition"] if a["cohort"] == "cel_vs_dic"]
    assert steps[-3:] == ["time_at_risk", "matched_target", "matched_comparator"]
    counts = {a["step"]: a["count"] for a in comp["attrition"] if a["cohort"] == "cel_vs_dic"}
    assert counts["matched_target"] == comp["n_target"] == 830 and counts["time_at_risk"] == 2630
    assert comp["table1_n"] == {"target_before": 1800, "comparator_before": 830, "target_after": 830,
                                "comparator_after": 830}


def test_report_shows_labels_reasons_and_n_per_column(done):
    html = (done.out_dir / "report.html").read_text()
    assert "Not estimable: cohort &#39;celecoxib_aa&#39;" in html
    assert "no events" in html and "suppressed (&lt;10)" in html
    assert re.search(r"celecoxib before<br>N = <span class=\"count\">1,800</span>", html)
    assert "withheld" not in html.split('id="methods"')[0]  # labels, not the old catch-all


def test_constant_covariates_and_separation_name_the_comparison(gibleed, tmp_path):
    spec = copy.deepcopy(BASE)
    spec["comparisons"] = {"cel_vs_dic": {"target": "celecoxib", "comparator": "diclofenac", "outcomes": ["gi_bleed"]}}
    spec["covariates"] = {"demographics": False, "concept_sets": ["alopecia"]}
    r = run_study(parse_spec(spec), gibleed, tmp_path / "a").results
    comp = _comparison(r, "cel_vs_dic")
    assert comp["status"] == NOT_ESTIMABLE and comp["status_reason"] == (
        "comparison 'cel_vs_dic': no propensity covariate varies among its people after step 'time_at_risk' "
        "(covariates: alopecia), so the propensity model cannot be fitted")
    assert [a["step"] for a in comp["attrition"]][-1] == "time_at_risk"
    spec["covariates"] = {"demographics": True, "all_conditions": True, "window": {"start": -365, "end": 0}}
    comp = _comparison(run_study(parse_spec(spec), gibleed, tmp_path / "b").results, "cel_vs_dic")
    assert comp["status"] == NOT_ESTIMABLE
    assert comp["status_reason"].startswith("comparison 'cel_vs_dic': the propensity model cannot be fitted: ")
    assert "separat" in comp["status_reason"]


def test_outcome_status_rules():
    assert outcome_status({"n_target": 5, "n_comparator": 5, "events_target": 0, "events_comparator": 3}, []) == (
        NOT_ESTIMABLE, "no events in the target arm")
    assert outcome_status({"n_target": 0, "n_comparator": 5, "events_target": 0, "events_comparator": 0}, [])[0] == NOT_ESTIMABLE
    assert status_label(NOT_ESTIMABLE, "no events in the target arm", 10) == "not estimable (no events in the target arm)"
    assert status_label(SUPPRESSED, None, 5) == "suppressed (<5)"


def test_cli_exit_code_says_whether_everything_was_estimated(gibleed, tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(BASE))
    res = CliRunner().invoke(app, ["run", str(spec_path), "--db", str(gibleed), "--out", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout)
    assert out["complete"] is False and len(out["not_estimated"]) == 2
    labels = {(r["comparison"], r["outcome"]): r["label"] for r in out["estimates"]}
    assert labels[("aa_cel_vs_dic", "gi_bleed")] == "not estimable (cohort celecoxib_aa empty after step require_0)"
    assert labels[("cel_vs_dic", "alopecia")] == "no events"
    assert (tmp_path / "o" / "results.json").exists() and (tmp_path / "o" / "report.html").exists()
    res = CliRunner().invoke(app, ["run", str(spec_path), "--db", str(gibleed), "--out", str(tmp_path / "o")])
    assert res.exit_code == 3 and "not everything was estimated" in res.stderr and "require_0" in res.stderr
    assert "not estimable" in res.stdout and "no events" in res.stdout
    complete = {**BASE, "comparisons": {"cel_vs_dic": {"target": "celecoxib", "comparator": "diclofenac",
                                                       "outcomes": ["gi_bleed"]}}}
    spec_path.write_text(json.dumps(complete))
    res = CliRunner().invoke(app, ["run", str(spec_path), "--db", str(gibleed), "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert "Warning" not in res.stderr  # no library warnings in a normal run


def test_methods_state_the_actual_windows():
    spec = load_spec(REPO / "studies" / "jaki_neuropsych.yaml")
    text = methods_paragraph(spec)
    assert "None" not in text and "99999" not in text
    assert ("Time at risk ran from the index date to the end of observation, censored at death; people whose time at "
            "risk ended on the day it started were left out.") in text
    assert "measured from the start of each person's records to the index date" in text
    assert window_text(Window(start=-365, end=-1)) == "from 365 days before index to 1 day before index"
    contract = load_spec(REPO / "tests" / "study" / "contract_spec.yaml")
    assert time_at_risk_text(contract) == ("Time at risk ran from 1 day after the index date to 60 days after the cohort "
                                           "end (the end of the exposure era holding the index), at most 3650 days, "
                                           "censored at the end of observation and at death; people with fewer than 30 "
                                           "days between its start and end were left out.")


def test_negative_bounds_read_as_a_range():
    assert fmt_ci(-0.04, -0.052, -0.028, 3) == "-0.040 (-0.052 to -0.028)"
    assert fmt_ci(1.42, 1.13, 1.79) == "1.42 (1.13 to 1.79)"
    assert fmt_ci(None, None, None, missing="no events") == "no events"


def test_cohorts_command_names_empty_cohorts(gibleed):
    import ibis

    from follicle.study.counts import cohort_counts

    spec = copy.deepcopy(BASE)
    spec["concept_sets"]["nothing"] = {"include": ["RxNorm:baricitinib"]}
    spec["cohorts"]["nobody"] = {"entry": {"concept_set": "nothing"}}
    result = cohort_counts(parse_spec(spec), ibis.duckdb.connect(str(gibleed), read_only=True))
    assert "cohort 'nobody' is empty: nobody has a first event of nothing (step 'entry')" in result["warnings"]
    assert ("cohort 'celecoxib_aa' is empty: 1,800 persons before step 'require_0' (has alopecia from any time to "
            "day 0 relative to index), none after it") in result["warnings"]


def test_report_shows_the_true_hr_beside_each_estimate(gibleed, tmp_path):
    spec = {**BASE, "comparisons": {"cel_vs_dic": {"target": "celecoxib", "comparator": "diclofenac",
                                                   "outcomes": ["gi_bleed"]}}}
    done = run_study(parse_spec(spec), gibleed, tmp_path, truth={("cel_vs_dic", "gi_bleed"): 1.37})
    html = done.out_dir.joinpath("report.html").read_text()
    row = re.search(r"<td class=\"l\">gi_bleed</td>.*?</tr>", html, re.S).group(0)
    assert "<th>true HR</th>" in html and re.search(r"1\.\d\d \(1\.\d\d to 1\.\d\d\)</td><td>1\.37</td>", row), row
    plain = run_study(parse_spec(spec), gibleed, tmp_path / "plain")
    assert "true HR" not in plain.out_dir.joinpath("report.html").read_text()


def test_report_lists_how_each_concept_set_was_resolved(done):
    html = (done.out_dir / "report.html").read_text()
    section = html.split('id="concept-sets"')[1].split("</table>")[0]
    assert "<td class=\"l\">celecoxib</td><td class=\"l\">concept_ancestor</td><td class=\"l\">concept 1</td>" in section
    assert "<td class=\"count\">1,844</td>" in section
    assert done.results["concept_sets"]["sets"][0]["concept_set"] == "celecoxib"


def test_where_the_events_of_an_outcome_ran_out():
    import numpy as np
    import pandas as pd

    from follicle.run.degenerate import where_events_emptied

    table = pd.DataFrame({"x_event": [1, 1, 0, 1], "x_prior": [1, 1, 0, 0]})
    assert where_events_emptied(table, "x", np.array([0, 0, 1, -1]), 10) == "<10 before matching, none among the matched"
    table["x_prior"] = [1, 1, 0, 1]
    assert where_events_emptied(table, "x", None, 2) == (
        "3 in the time at risk, none left after removing people with the outcome before it")
    assert where_events_emptied(table.assign(x_event=0), "x", None, 10) == "none in the time at risk"
