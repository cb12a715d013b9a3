"""Bad input gets one clear InputError naming the column (library level)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from follicle.errors import InputError
from follicle.survival import (
    CoxPH,
    fit_outcome_model,
    incidence_rates,
    kaplan_meier,
    logrank_test,
    risk_comparison,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"days": [5.0, 3, 8, 2, 9, 4], "died": [1, 0, 1, 1, 0, 1], "arm": [1, 0, 1, 0, 1, 0]})


def test_non_numeric_times_named(frame):
    bad = frame.assign(days=["5", "3", "x", "2", "9", "4"])
    with pytest.raises(InputError, match=r"column 'days' must hold numeric times; got non-numeric value 'x' \(rows 2"):
        kaplan_meier(bad["days"], bad["died"])


def test_negative_times_named(frame):
    bad = frame.assign(days=[5.0, -1, 8, 2, 9, 4])
    with pytest.raises(InputError, match=r"column 'days' must hold times >= 0; got -1.0 \(rows 1"):
        CoxPH().fit(bad[["arm"]], bad["days"], bad["died"])


def test_missing_times_named(frame):
    bad = frame.assign(days=[5.0, np.nan, 8, 2, 9, 4])
    with pytest.raises(InputError, match="column 'days' has missing"):
        logrank_test(bad["days"], bad["died"], bad["arm"])


def test_bad_event_codes_named(frame):
    with pytest.raises(InputError, match="column 'died' must hold event indicators"):
        kaplan_meier(frame["days"], frame["died"].replace(0, 2))


def test_all_censored(frame):
    cens = frame.assign(died=0)
    with pytest.raises(InputError, match="column 'died' has no events"):
        CoxPH().fit(cens[["arm"]], cens["days"], cens["died"])
    with pytest.raises(InputError, match="column 'died' has no events"):
        logrank_test(cens["days"], cens["died"], cens["arm"])
    km = kaplan_meier(cens["days"], cens["died"])  # a KM curve of all-censored data is just flat at 1
    assert (km.table["survival"] == 1).all() and np.isnan(km.median)


def test_single_group(frame):
    one = frame.assign(arm=1)
    with pytest.raises(InputError, match="column 'arm' must have at least 2 distinct groups"):
        logrank_test(one["days"], one["died"], one["arm"])
    with pytest.raises(InputError, match="'arm' has a single value"):
        fit_outcome_model(one["days"], one["died"], one["arm"], robust_se=False)
    with pytest.raises(InputError, match="column 'arm' must have at least 2 distinct groups"):
        risk_comparison(one["days"], one["died"], one["arm"])


def test_treatment_must_be_binary(frame):
    with pytest.raises(InputError, match="column 'arm' must hold 1"):
        fit_outcome_model(frame["days"], frame["died"], frame["arm"] + 1)


def test_parameter_messages(frame):
    with pytest.raises(ValueError, match="'conf_type' parameter must be one of"):
        kaplan_meier(frame["days"], frame["died"], conf_type="logit")
    with pytest.raises(ValueError, match="'window' parameter is required"):
        risk_comparison(frame["days"], frame["died"], frame["arm"], estimator="km")
    with pytest.raises(ValueError, match="'time_unit' parameter"):
        incidence_rates(frame["days"], frame["died"], time_unit="fortnights")
