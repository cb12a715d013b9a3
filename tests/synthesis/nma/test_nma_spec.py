"""The NMA spec: YAML/JSON round trip, and how trial arms reported as percentages (the shared JAKi trial
arms) become counts, one time point per trial."""

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from follicle.errors import InputError
from follicle.synthesis.nma.spec import NMASpec, TrialPercent, arms_from_trial_percent, run_spec

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def spec():
    return NMASpec.from_yaml((REPO / "studies" / "jaki_nma.yaml").read_text())


@pytest.fixture(scope="module")
def trials(shared_dir):
    return pd.read_csv(shared_dir / "data" / "trials" / "jaki_aa_rct_arms.csv")


def test_round_trip(spec):
    assert NMASpec.from_yaml(spec.to_yaml()) == spec
    assert NMASpec.from_json(spec.to_json()) == spec
    assert NMASpec.from_json(spec.to_json()).spec_hash() == spec.spec_hash()


def test_spec_validation():
    with pytest.raises(ValidationError, match="clinically_important_reason"):
        NMASpec.model_validate({"name": "x", "data": "d.csv", "better": "higher",
                                "grade": {"outcome": "o", "clinically_important": 1.25}})
    with pytest.raises(ValidationError):
        NMASpec.model_validate({"name": "x", "data": "d.csv"})  # better is required
    with pytest.raises(ValidationError):
        NMASpec.model_validate({"name": "x", "data": "d.csv", "better": "higher", "measure": "HR"})


def test_responders_from_percentages_and_labels(trials):
    arms, notes = arms_from_trial_percent(trials, TrialPercent())
    bari4 = arms[(arms["study"] == "BRAVE-AA1") & (arms["treatment"] == "baricitinib 4 mg QD")].iloc[0]
    assert (bari4["events"], bari4["n"]) == (round(38.8 * 281 / 100), 281)
    thrive_placebo = arms[(arms["study"] == "THRIVE-AA1") & (arms["treatment"] == "placebo")].iloc[0]
    assert thrive_placebo["events"] == round(0.8 * 140 / 100) == 1
    assert sorted(arms.groupby("study").size().tolist()) == [3, 3, 3, 5]  # placebo arms are not split
    assert "round(percent x n / 100)" in notes[0]


def test_timepoints(trials):
    _, notes = arms_from_trial_percent(trials, TrialPercent(timepoint="latest"))
    assert any("pooled across different time points" in n for n in notes)
    arms, notes = arms_from_trial_percent(trials, TrialPercent(timepoint=24))
    assert set(arms["study"]) == {"ALLEGRO-2b/3", "THRIVE-AA1"}
    assert sum("left out: no week-24 result" in n for n in notes) == 2
    two_weeks = pd.concat([trials, trials[trials["trial"] == "THRIVE-AA1"].assign(week=52, percent=50.0)])
    early, _ = arms_from_trial_percent(two_weeks, TrialPercent(timepoint="earliest"))
    late, _ = arms_from_trial_percent(two_weeks, TrialPercent(timepoint="latest"))
    t_early = early[early["study"] == "THRIVE-AA1"]["events"].tolist()
    t_late = late[late["study"] == "THRIVE-AA1"]["events"].tolist()
    assert t_early != t_late and t_late == [round(50.0 * n / 100) for n in late[late["study"] == "THRIVE-AA1"]["n"]]


def test_trial_data_problems(trials):
    mixed = trials.copy()
    mixed.loc[mixed.index[0], "percent_source"] = "press release"
    with pytest.raises(InputError, match="BRAVE-AA1 mixes figures from different sources"):
        arms_from_trial_percent(mixed, TrialPercent())
    with pytest.raises(InputError, match="no rows with endpoint 'SALT<=10'"):
        arms_from_trial_percent(trials, TrialPercent(endpoint="SALT<=10"))
    with pytest.raises(InputError, match="missing column"):
        arms_from_trial_percent(trials.drop(columns=["percent"]), TrialPercent())


def test_week_24_sensitivity_analysis_runs(spec, trials):
    s24 = spec.model_copy(update={"trial_percent": TrialPercent(timepoint=24), "grade": None})
    res, out = run_spec(s24, trials)
    assert not any(t.startswith("baricitinib") for t in res.treatments)
    assert out["k"] == 2 and "grade" not in out
