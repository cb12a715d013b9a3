"""Endpoints from visit series: hand-computed cases for each rule of clinical.md section 2.2."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from follicle.errors import InputError
from follicle.response.endpoints import (
    EndpointSettings,
    meets,
    patient_endpoints,
    percent_regrowth,
    relative_reduction,
)


def visits(rows):
    return pd.DataFrame(rows, columns=["patient_id", "day", "salt", "on_drug"])


def test_relative_rules():
    assert relative_reduction(80, 40) == 0.5
    assert np.isnan(relative_reduction(0, 0))  # undefined when baseline is 0
    assert percent_regrowth(80, 8) == pytest.approx(90.0)
    assert meets("salt50", 80, 40) == 1.0
    assert meets("salt75", 80, 40) == 0.0
    assert meets("salt90", 80, 8) == 1.0  # exactly 90%: meets (>=)
    assert np.isnan(meets("salt50", 0, 0))
    assert meets("salt20", 90, 20) == 1.0 and meets("salt20", 90, 20.1) == 0.0
    assert meets("salt10", 90, 10) == 1.0
    with pytest.raises(ValueError, match="salt30"):
        meets("salt30", 1, 1)


def test_landmark_observed_nearest_in_window():
    v = visits([("a", 0, 80, 1), ("a", 90, 60, 1), ("a", 260, 30, 1), ("a", 280, 18, 1), ("a", 400, 5, 1)])
    s = EndpointSettings(response="salt20", landmark_days=274, window_days=42)
    e = patient_endpoints(v, s).iloc[0]
    assert e.assessment == "observed" and e.assessment_day == 280 and e.salt == 18
    assert e.responder == 1.0 and e.salt50 == 1.0 and e.salt90 == 0.0
    assert e.regrowth_pct == pytest.approx(100 * 62 / 80)
    assert e.time_to_response_days == 280 and e.response_event == 1
    assert "+/- 42" in patient_endpoints(v, s).attrs["definition"]


def test_landmark_missing_locf_nri_none():
    v = visits([("a", 0, 80, 1), ("a", 150, 15, 1), ("a", 500, 10, 1)])
    base = dict(response="salt20", landmark_days=274, window_days=42)
    locf = patient_endpoints(v, EndpointSettings(**base, imputation="locf")).iloc[0]
    assert (locf.assessment, locf.salt, locf.responder) == ("locf", 15, 1.0)
    nri = patient_endpoints(v, EndpointSettings(**base, imputation="nri")).iloc[0]
    assert (nri.assessment, nri.responder) == ("nri", 0.0) and np.isnan(nri.salt)
    none = patient_endpoints(v, EndpointSettings(**base, imputation="none")).iloc[0]
    assert none.assessment == "missing" and np.isnan(none.responder)
    assert "non-responder" in patient_endpoints(v, EndpointSettings(**base)).attrs["definition"]


def test_end_of_treatment_and_relapse():
    # pilot-trial shape: on drug to day 180, then 3 months off drug
    v = visits([
        ("p1", 0, 100, 1), ("p1", 90, 40, 1), ("p1", 180, 5, 1), ("p1", 230, 30, 0), ("p1", 270, 70, 0),
        ("p2", 0, 60, 1), ("p2", 180, 50, 1), ("p2", 270, 55, 0),
        ("p3", 0, 70, 1), ("p3", 180, 10, 1), ("p3", 270, 12, 0),
    ])
    e = patient_endpoints(v, EndpointSettings(response="salt50")).set_index("patient_id")
    assert e.loc["p1", "assessment"] == "end of treatment" and e.loc["p1", "salt"] == 5
    assert e.loc["p1", "responder"] == 1.0 and e.loc["p2", "responder"] == 0.0
    assert e.loc["p1", "time_to_response_days"] == 90
    assert e.loc["p1", "stop_day"] == 180
    # p1 regrowth 95% at stop: SALT 30 at day 230 is still 70% regrowth (SALT50 met), 70 is not
    assert e.loc["p1", "relapse"] == 1.0 and e.loc["p1", "time_to_relapse_days"] == 90
    assert e.loc["p3", "relapse"] == 0.0 and e.loc["p3", "time_to_relapse_days"] == 90
    assert np.isnan(e.loc["p2", "relapse"])  # not a responder at stop
    assert e.loc["p2", "response_event"] == 0 and e.loc["p2", "time_to_response_days"] == 270


def test_dates_and_baseline_from_dates():
    v = pd.DataFrame({
        "patient_id": ["a", "a", "a"],
        "date": ["2022-07-01", "2022-07-15", "2023-04-01"],
        "salt": [np.nan, 90, 10],
        "on_drug": [0, 1, 1],
    })
    e = patient_endpoints(v, EndpointSettings(response="salt20", landmark_days=274, window_days=42)).iloc[0]
    assert e.baseline_salt == 90 and e.assessment_day == 260 and e.responder == 1.0


def test_bad_input_names_row_and_column():
    with pytest.raises(InputError, match="row 1, column 'salt'.*\\[0, 100\\].*120"):
        patient_endpoints(visits([("a", 0, 80, 1), ("a", 10, 120, 1)]))
    with pytest.raises(InputError, match="row 2, column 'day'.*out of date order"):
        patient_endpoints(visits([("a", 0, 80, 1), ("a", 50, 40, 1), ("a", 20, 30, 1)]))
    with pytest.raises(InputError, match="row 0, column 'salt'.*no baseline"):
        patient_endpoints(visits([("a", 0, np.nan, 1), ("a", 50, 40, 1)]))
    with pytest.raises(InputError, match="no on-drug visit"):
        patient_endpoints(visits([("a", 0, 50, 0)]))
    with pytest.raises(InputError, match="missing column.*on_drug"):
        patient_endpoints(visits([("a", 0, 50, 0)]).drop(columns="on_drug"))
    with pytest.raises(ValueError, match="imputation"):
        patient_endpoints(visits([("a", 0, 50, 1)]), EndpointSettings(imputation="mean"))


@given(st.floats(0.1, 100), st.floats(0, 100))
def test_relative_endpoints_nest(baseline, current):
    # SALT90 implies SALT75 implies SALT50; regrowth is 100 x the relative reduction
    m = [meets(d, baseline, current) for d in ("salt90", "salt75", "salt50")]
    assert m[0] <= m[1] <= m[2]
    assert percent_regrowth(baseline, current) == pytest.approx(100 * (baseline - current) / baseline)
    assert meets("salt10", baseline, current) <= meets("salt20", baseline, current)
