"""Small-cell suppression primitives and the withholding rules of results assembly."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from follicle.privacy import is_small, suppress_count, suppress_counts
from follicle.run.estimate import OutcomeEstimate
from follicle.run.results import outcome_record


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=2, max_value=50))
def test_suppress_count_hides_exactly_1_to_threshold_minus_1(n, threshold):
    out = suppress_count(n, threshold)
    if 1 <= n < threshold:
        assert out == f"<{threshold}"
    else:
        assert out == n


def test_zero_and_labels_pass_through():
    assert suppress_count(0) == 0
    assert suppress_count("<10") == "<10"
    assert not is_small(None)
    assert not is_small(float("nan"))


def test_suppress_counts_touches_only_count_keys_and_lists_of_counts():
    doc = {"a": {"n_target": 4, "hr": 2.0}, "rows": [{"count": 15}, {"count": 9}], "at_risk": [120, 3, 0],
           "flag": True}
    out = suppress_counts(doc, ["n_target", "count", "at_risk"])
    assert out == {"a": {"n_target": "<10", "hr": 2.0}, "rows": [{"count": 15}, {"count": "<10"}],
                   "at_risk": [120, "<10", 0], "flag": True}


def _estimate(events_t: int, events_c: int, n: int = 500) -> OutcomeEstimate:
    numbers = {"n_target": n, "n_comparator": n, "events_target": events_t, "events_comparator": events_c,
               "risk_target": events_t / n, "risk_comparator": events_c / n, "rd": 0.01, "rd_ci_low": 0.0,
               "rd_ci_high": 0.02, "rr": 1.2, "rr_ci_low": 0.9, "rr_ci_high": 1.5, "or": 1.2, "or_ci_low": 0.9,
               "or_ci_high": 1.6, "hr": 1.1, "hr_ci_low": 0.8, "hr_ci_high": 1.4, "p": 0.4,
               "person_years_target": 900.0, "person_years_comparator": 950.0}
    return OutcomeEstimate("x", False, numbers)


def test_small_event_count_withholds_every_estimate():
    rec = outcome_record(_estimate(4, 40), 10)
    assert rec["events_target"] == "<10" and rec["events_comparator"] == 40
    for key in ("risk_target", "rd", "rr", "or", "hr", "hr_ci_low", "p", "person_years_target"):
        assert rec[key] is None, key
    assert {"hr", "risk_target", "rr"} <= set(rec["withheld"])


def test_large_counts_keep_estimates():
    rec = outcome_record(_estimate(40, 60), 10)
    assert rec["hr"] == pytest.approx(1.1)
    assert rec["risk_target"] == pytest.approx(40 / 500)
    assert rec["withheld"] == []
