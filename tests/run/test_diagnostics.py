"""Diagnostics as CohortMethod gates them: MDRR (Schoenfeld 1983, as CohortMethod's
``computeMdrrFromAggregateStats`` in OHDSI/CohortMethod R/Power.R), EASE (Schuemie et al. 2018,
E|X| for the empirical null X ~ N(mean, sd^2), checked by numerical integration), strict
thresholds (max |SMD| < 0.1, equipoise > 0.2, EASE < 0.25, MDRR < 10) and the overall flag
(CohortMethod's unblind rule: FAIL when any diagnostic fails)."""

from __future__ import annotations

import math

import pytest
from scipy import integrate, stats

from follicle.run import diagnostics as dx


def cohort_method_mdrr(p_target: float, total_events: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """computeMdrrFromAggregateStats(modelType = "cox", twoSided = TRUE), transcribed."""
    if total_events == 0:
        return math.inf
    z1 = stats.norm.ppf(1 - alpha / 2)
    z_beta = -stats.norm.ppf(1 - power)
    return math.exp(math.sqrt((z_beta + z1) ** 2 / (total_events * p_target * (1 - p_target))))


@pytest.mark.parametrize(("events", "n_t", "n_c"), [(479, 1800, 830), (10, 50, 50), (3, 1000, 20), (0, 10, 10)])
def test_mdrr_is_cohort_methods(events, n_t, n_c):
    assert dx.mdrr(events, n_t, n_c) == pytest.approx(cohort_method_mdrr(n_t / (n_t + n_c), events), rel=1e-12)


@pytest.mark.parametrize(("mean", "sd"), [(0.0, 0.2), (0.15, 0.1), (-0.3, 0.05), (0.05, 1e-9), (0.4, 0.0)])
def test_ease_is_the_expected_absolute_error_of_the_null(mean, sd):
    if sd < 1e-6:
        expected = abs(mean)
    else:
        expected, _ = integrate.quad(lambda x: abs(x) * stats.norm.pdf(x, mean, sd), mean - 12 * sd, mean + 12 * sd,
                                     points=[0.0], limit=200)
    assert dx.expected_absolute_systematic_error(mean, sd) == pytest.approx(expected, rel=1e-7, abs=1e-12)


def test_thresholds_are_strict():
    assert dx.balance_diagnostic(0.0999, 0.1).status == "PASS"
    assert dx.balance_diagnostic(0.1, 0.1).status == "FAIL"
    assert dx.equipoise_diagnostic(0.2).status == "FAIL" and dx.equipoise_diagnostic(0.21).status == "PASS"
    assert dx.mdrr_diagnostic(10.0).status == "FAIL" and dx.mdrr_diagnostic(9.99).status == "PASS"
    assert dx.mdrr_diagnostic(math.inf).status == "FAIL"  # no events: nothing detectable
    mean_at_threshold = 0.25  # sd 0: EASE = |mean|
    assert dx.ease_diagnostic(mean_at_threshold, 0.0).status == "FAIL"
    assert dx.ease_diagnostic(0.2, 0.0).status == "PASS"


def test_not_evaluated_and_the_overall_flag():
    none = dx.estimate_diagnostics(max_abs_smd=float("nan"), balance_threshold=0.1, equipoise=None, events=50,
                                   n_target=100, n_comparator=100, null=None)
    assert [d.status for d in none] == ["NOT_EVALUATED", "NOT_EVALUATED", "PASS", "NOT_EVALUATED"]
    assert dx.overall(none) == "PASS"  # not evaluated does not fail (CohortMethod's unblind rule)
    good = dx.estimate_diagnostics(max_abs_smd=0.05, balance_threshold=0.1, equipoise=0.6, events=200,
                                   n_target=1000, n_comparator=900, null={"mean": 0.02, "sd": 0.05})
    assert [d.status for d in good] == ["PASS"] * 4 and dx.overall(good) == "PASS"
    for change, failing in ((dict(max_abs_smd=0.15), dx.BALANCE), (dict(equipoise=0.1), dx.EQUIPOISE),
                            (dict(events=2), dx.MDRR), (dict(null={"mean": 0.4, "sd": 0.1}), dx.EASE)):
        args = dict(max_abs_smd=0.05, balance_threshold=0.1, equipoise=0.6, events=200, n_target=1000,
                    n_comparator=900, null={"mean": 0.02, "sd": 0.05}) | change
        result = dx.estimate_diagnostics(**args)
        assert [d.name for d in result if d.status == "FAIL"] == [failing]
        assert dx.overall(result) == "FAIL"
