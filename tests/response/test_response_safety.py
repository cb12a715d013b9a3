"""Safety incidence rates: exact Poisson CIs against R's poisson.test; the source-4 figures."""

import numpy as np
import pandas as pd
import pytest

from follicle.errors import InputError
from follicle.response.safety import count_events, exposure_years, rate_table, safety_rates
from rbridge import run_r


def test_source4_herpes_zoster_rate():
    # mission.md section 4: 34 herpes zoster cases in 1,868 patient-years = 1.8 per 100 PY
    t = rate_table({"herpes zoster": 34}, 1868.0)
    assert round(t.rate.iloc[0], 1) == 1.8
    assert t.rate.iloc[0] == pytest.approx(100 * 34 / 1868)


@pytest.mark.r
def test_rate_table_equals_r_poisson_test(rscript):
    rng = np.random.default_rng(21)
    types = [f"e{i}" for i in range(10)]
    counts = dict(zip(types, [0, 1] + rng.integers(0, 80, 8).tolist()))
    pys = dict(zip(types, rng.uniform(50, 3000, 10).round(2).tolist()))
    t = rate_table(counts, pys, per=100, conf_level=0.9)
    code = "".join(
        f'r <- poisson.test({counts[k]}, {pys[k]}, conf.level = 0.9); out("{k}", c(r$estimate, r$conf.int) * 100)\n'
        for k in types
    )
    ref = run_r(rscript, code)
    for _, row in t.iterrows():
        exp = ref[row.event_type]
        assert row.rate == pytest.approx(exp[0], rel=1e-6, abs=1e-14)
        assert row.ci_low == pytest.approx(exp[1], rel=1e-6, abs=1e-14)
        assert row.ci_high == pytest.approx(exp[2], rel=1e-6)


def test_patient_level_counts_and_exposure():
    ev = pd.DataFrame({"patient_id": ["A", "A", "B", "C"], "event_type": ["zoster", "zoster", "zoster", ""],
                       "date": pd.to_datetime(["2023-02-01", "2023-05-01", "2025-01-01", "2023-01-01"])})
    ex = pd.DataFrame({"patient_id": ["A", "B"], "start_date": pd.to_datetime(["2023-01-01", "2023-01-01"]),
                       "end_date": pd.to_datetime(["2023-12-31", "2023-12-31"])})
    assert count_events(ev) == {"zoster": 3}
    assert count_events(ev, ex) == {"zoster": 2}  # B's event is outside exposure
    assert count_events(ev, ex, count="patients") == {"zoster": 1}
    assert exposure_years(ex).sum() == pytest.approx(2 * 365 / 365.25)
    t = safety_rates(ev, exposure=ex, event_types=["VTE"])
    assert t.set_index("event_type").loc["VTE", "events"] == 0
    with pytest.raises(InputError, match="exactly one"):
        safety_rates(ev)
    bad = ex.assign(end_date=pd.to_datetime(["2022-01-01", "2023-12-31"]))
    with pytest.raises(InputError, match="row 0, column 'end_date'.*out of order"):
        exposure_years(bad)
