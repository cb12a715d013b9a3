"""Invariances any correct implementation has (no reference numbers needed)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from follicle.synthesis.effect_sizes import binary_effects, generic_effects
from follicle.synthesis.pooling import meta_analysis

studies = st.lists(
    st.tuples(st.floats(-2, 2), st.floats(0.01, 1.0)), min_size=3, max_size=12
)


@settings(max_examples=40, deadline=None)
@given(studies, st.sampled_from(["EE", "DL", "REML", "PM", "ML", "SJ", "HE"]), st.randoms(use_true_random=False))
def test_order_invariance_and_sign_symmetry(data, method, rnd):
    y = np.array([d[0] for d in data])
    v = np.array([d[1] for d in data])
    res = meta_analysis(generic_effects(y, np.sqrt(v)), method=method)
    idx = list(range(len(y)))
    rnd.shuffle(idx)
    shuffled = meta_analysis(generic_effects(y[idx], np.sqrt(v[idx])), method=method)
    assert shuffled.estimate == pytest.approx(res.estimate, rel=1e-7, abs=1e-9)
    assert shuffled.tau2 == pytest.approx(res.tau2, rel=1e-6, abs=1e-9)
    mirrored = meta_analysis(generic_effects(-y, np.sqrt(v)), method=method)
    assert mirrored.estimate == pytest.approx(-res.estimate, rel=1e-7, abs=1e-9)
    assert res.tau2 >= 0 and res.ci_low <= res.estimate <= res.ci_high
    assert res.pi_low <= res.ci_low + 1e-12 and res.pi_high >= res.ci_high - 1e-12


@pytest.mark.parametrize("method", ["MH", "PETO", "REML"])
def test_swapping_arms_inverts_the_odds_ratio(method):
    a, n1, c, n2 = [12, 5, 30, 0], [100, 80, 200, 40], [20, 9, 41, 3], [100, 85, 190, 45]
    fwd = meta_analysis(binary_effects(a, n1, c, n2, measure="OR"), method=method)
    rev = meta_analysis(binary_effects(c, n2, a, n1, measure="OR"), method=method)
    assert rev.estimate == pytest.approx(-fwd.estimate, rel=1e-10)
    assert rev.se == pytest.approx(fwd.se, rel=1e-10)
