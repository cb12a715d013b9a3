"""SALT, AA-IGA and ClinRO: worked examples (clinical.md section 2) and property tests."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from follicle.response.salt import (
    SALT_WEIGHTS,
    aa_iga,
    aa_iga_label,
    check_clinro,
    clinro_response,
    salt_score,
    score,
)

pct = st.floats(min_value=0, max_value=100, allow_nan=False)


def test_weights_are_olsen_2004_and_sum_to_one():
    # Olsen 2004 via clinical.md 2.1: top 40%, back 24%, left 18%, right 18%
    assert SALT_WEIGHTS == {"top": 0.40, "back": 0.24, "left": 0.18, "right": 0.18}
    assert math.fsum(SALT_WEIGHTS.values()) == pytest.approx(1.0, abs=1e-15)


def test_worked_example_right_side_20_percent():
    # clinical.md 2.1: 20% loss on the right side adds 20 x 0.18 = 3.6
    assert salt_score(0, 0, 0, 20) == pytest.approx(3.6)
    assert salt_score(100, 100, 100, 100) == pytest.approx(100.0)
    assert salt_score(0, 0, 0, 0) == 0.0
    assert salt_score(50, 25, 10, 0) == pytest.approx(0.4 * 50 + 0.24 * 25 + 0.18 * 10)


@given(pct, pct, pct, pct)
@settings(max_examples=300, deadline=None)
def test_bounds(top, back, left, right):
    s = salt_score(top, back, left, right)
    assert 0.0 <= s <= 100.0
    assert min(top, back, left, right) - 1e-9 <= s <= max(top, back, left, right) + 1e-9


@given(pct, pct, pct, pct, st.sampled_from(["top", "back", "left", "right"]), st.floats(0, 100))
@settings(max_examples=300, deadline=None)
def test_monotone_in_each_region(top, back, left, right, region, bump):
    base = {"top": top, "back": back, "left": left, "right": right}
    more = dict(base)
    more[region] = min(100.0, base[region] + bump)
    s0, s1 = salt_score(**base), salt_score(**more)
    assert s1 >= s0 - 1e-12
    assert s1 - s0 == pytest.approx(SALT_WEIGHTS[region] * (more[region] - base[region]), abs=1e-9)


@given(st.floats(0, 100))
def test_uniform_loss_gives_same_total(x):
    # weights summing to 1: equal loss everywhere is that loss
    assert salt_score(x, x, x, x) == pytest.approx(x, abs=1e-9)


def test_vectorised():
    s = salt_score(np.array([0, 100]), np.array([0, 100]), np.array([0, 100]), np.array([0, 50]))
    assert s.tolist() == pytest.approx([0.0, 91.0])


@pytest.mark.parametrize("bad", [120, -1, float("nan"), float("inf")])
def test_region_out_of_range_named(bad):
    with pytest.raises(ValueError, match="'back'.*\\[0, 100\\]"):
        salt_score(10, bad, 10, 10)


@pytest.mark.parametrize(
    "salt,cat,label",
    # bands of clinical.md 2.3 (Wyrwich 2020): 0 / 1-20 / 21-49 / 50-94 / 95-100
    [(0, 0, "none"), (1, 1, "limited"), (20, 1, "limited"), (21, 2, "moderate"), (49, 2, "moderate"),
     (50, 3, "severe"), (94, 3, "severe"), (95, 4, "very severe"), (100, 4, "very severe")],
)
def test_aa_iga_bands(salt, cat, label):
    assert aa_iga(salt) == cat
    assert aa_iga_label(cat) == label


@given(st.floats(0, 100), st.floats(0, 100))
def test_aa_iga_monotone(a, b):
    lo, hi = sorted((a, b))
    assert aa_iga(lo) <= aa_iga(hi)


def test_score_result_keeps_regions():
    r = score(100, 100, 100, 100)
    assert (r.salt, r.aa_iga, r.top) == (100.0, 4, 100.0)


def test_clinro():
    assert check_clinro(3) == 3
    assert check_clinro([0, 1, 2]).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="0-3"):
        check_clinro(4)
    with pytest.raises(ValueError, match="0-3"):
        check_clinro(1.5)
    assert clinro_response(3, 1) is True
    assert clinro_response(1, 1) is False
    assert clinro_response(3, 1, min_improvement=2) is True
    assert clinro_response(2, 1, min_improvement=2) is False
