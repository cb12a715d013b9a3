"""E-values against the published examples (VanderWeele & Ding, Ann Intern Med 2017;167:268, and the
R EValue package vignette), as listed in shared/reference/validation.md."""

from __future__ import annotations

import math

import pytest

from follicle.causal import evalue, evalue_rr
from follicle.errors import InputError


def test_vanderweele_ding_2017_rr_3_9():
    # Source: VanderWeele & Ding 2017 (breastfeeding example): RR 3.9 (CI 1.8-8.7) -> 7.26 and 3.0.
    res = evalue(3.9, 1.8, 8.7)
    assert round(res.evalue_estimate, 2) == 7.26
    assert round(res.evalue_ci, 2) == 3.00


def test_evalue_vignette_rr_10_73():
    # Source: R EValue package vignette: RR 10.73 -> E-value 20.95.
    assert round(evalue_rr(10.73), 2) == 20.95


def test_protective_estimate_uses_inverse_and_upper_limit():
    res = evalue(1 / 3.9, 1 / 8.7, 1 / 1.8)
    assert res.evalue_estimate == pytest.approx(7.263034, rel=1e-6)
    assert res.evalue_ci == pytest.approx(3.0, rel=1e-12)


def test_interval_crossing_null_gives_one():
    assert evalue(1.5, 0.9, 2.5).evalue_ci == 1.0
    assert evalue(0.7, 0.4, 1.1).evalue_ci == 1.0


def test_common_outcome_conversions():
    # VanderWeele & Ding 2017 (Table): common outcome RR ~ sqrt(OR); HR -> (1-0.5^sqrt(HR))/(1-0.5^sqrt(1/HR)).
    res = evalue(4.0, measure="OR", rare=False)
    assert res.rr == pytest.approx(2.0)
    assert res.evalue_estimate == pytest.approx(2 + math.sqrt(2))
    hr = evalue(0.5, measure="HR", rare=False)
    rr = (1 - 0.5 ** math.sqrt(0.5)) / (1 - 0.5 ** math.sqrt(2))
    assert hr.rr == pytest.approx(rr, rel=1e-12)
    assert evalue(0.5, measure="HR", rare=True).rr == 0.5


@pytest.mark.parametrize("args", [(-1.0,), (float("nan"),), (2.0, 2.5, 3.0)])
def test_bad_input_names_the_parameter(args):
    with pytest.raises(InputError, match="estimate|interval"):
        evalue(*args)
