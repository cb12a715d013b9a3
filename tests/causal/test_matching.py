"""Greedy caliper matching: properties (hypothesis) and equality with O(n^2) exhaustive references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from follicle.causal import match, pooled_sd_logit
from follicle.causal._greedy import closest_pairs, ordered_nearest
from follicle.errors import InputError

from ._reference import exhaustive_closest, exhaustive_ordered


@st.composite
def cases(draw, max_n=24):
    """Small problems on a grid of PS values (grid: many exact ties, distances never tie by rounding)."""
    n = draw(st.integers(2, max_n))
    grid = draw(st.lists(st.integers(1, 39), min_size=n, max_size=n))
    t = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ps = np.array(grid) / 40.0
    tr = np.array(t)
    if tr.all() or not tr.any():
        tr[0] = not tr[0]
    caliper = draw(st.sampled_from([0.05, 0.1, 0.2, 0.5, None]))
    return ps, tr, caliper


def _pairs(res):
    return dict(zip(res.treated.tolist(), res.control.tolist()))


def _logit(p):
    return np.log(p) - np.log1p(-p)


@settings(max_examples=300, deadline=None)
@given(cases(), st.sampled_from(["random", "closest"]), st.integers(0, 2**31), st.integers(1, 3), st.booleans())
def test_no_control_twice_and_every_pair_within_caliper(case, order, seed, ratio, variable):
    ps, tr, caliper = case
    res = match(ps, tr, caliper=caliper, order=order, seed=seed, ratio=ratio, variable_ratio=variable)
    assert len(set(res.control.tolist())) == res.n_control_matched  # no control used twice
    sizes = np.bincount(res.set_id) if res.n_pairs else np.array([], int)
    assert np.all(sizes <= ratio) and (variable or np.all(sizes == ratio))
    assert len(np.unique(res.set_id)) == res.n_treated_matched  # one set per treated unit
    assert tr[res.treated].all() and not tr[res.control].any()
    width = math.inf if caliper is None else caliper * pooled_sd_logit(ps, tr)
    assert res.caliper_width == width
    d = np.abs(_logit(ps[res.treated]) - _logit(ps[res.control]))
    assert np.all(d <= width)
    np.testing.assert_array_equal(d, res.distance)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_closest_first_equals_exhaustive_reference(case):
    ps, tr, caliper = case
    res = match(ps, tr, caliper=caliper, order="closest")
    width = math.inf if caliper is None else caliper * pooled_sd_logit(ps, tr)
    assert _pairs(res) == exhaustive_closest(_logit(ps), tr, width)


@settings(max_examples=300, deadline=None)
@given(cases(), st.integers(0, 2**31))
def test_random_order_equals_exhaustive_scan_in_that_order(case, seed):
    ps, tr, caliper = case
    x = _logit(ps)
    width = math.inf if caliper is None else caliper * pooled_sd_logit(ps, tr)
    order = np.random.default_rng(seed).permutation(np.flatnonzero(tr)).astype(np.int64)
    cpos = np.flatnonzero(~tr)
    controls = cpos[np.argsort(x[cpos], kind="stable")].astype(np.int64)
    got = ordered_nearest(x, order, controls, width, np.zeros(controls.shape[0], bool))
    assert {int(i): int(j) for i, j in zip(order, got) if j >= 0} == exhaustive_ordered(x, order, controls, width)
    # and match() uses exactly this order for the seed
    assert _pairs(match(ps, tr, caliper=caliper, order="random", seed=seed)) == \
        exhaustive_ordered(x, order, controls, width)


def test_python_kernels_agree_with_compiled():
    rng = np.random.default_rng(11)
    x = rng.normal(size=400)
    tr = rng.random(400) < 0.4
    compiled = closest_pairs(x, tr, np.ones(400, bool), 0.05)
    plain = getattr(closest_pairs, "py_func", closest_pairs)(x, tr, np.ones(400, bool), 0.05)
    np.testing.assert_array_equal(compiled, plain)


def test_random_order_reproducible_by_seed_and_varies_between_seeds():
    rng = np.random.default_rng(1)
    ps = rng.beta(2, 3, 3000)
    tr = rng.random(3000) < 1 / (1 + np.exp(-(_logit(ps))))
    a = match(ps, tr, seed=42)
    b = match(ps, tr, seed=42)
    c = match(ps, tr, seed=43)
    np.testing.assert_array_equal(a.treated, b.treated)
    np.testing.assert_array_equal(a.control, b.control)
    assert _pairs(a) != _pairs(c)


def test_one_to_k_and_variable_ratio():
    rng = np.random.default_rng(3)
    n = 4000
    ps = rng.uniform(0.05, 0.6, n)
    tr = rng.random(n) < ps
    for order in ("random", "closest"):
        fixed = match(ps, tr, ratio=3, caliper=0.2, order=order)
        sizes = np.bincount(fixed.set_id)
        assert np.all(sizes == 3)
        assert len(set(fixed.control.tolist())) == fixed.n_control_matched
        var = match(ps, tr, ratio=3, variable_ratio=True, caliper=0.2, order=order)
        vs = np.bincount(var.set_id)
        assert vs.min() >= 1 and vs.max() <= 3 and (vs < 3).any()
        w = var.weights()
        # ATT weights: controls of each set sum to 1, so control weights sum to the treated count
        assert w[var.control].sum() == pytest.approx(var.n_treated_matched)
        assert len(set(var.control.tolist())) == var.n_control_matched
        first = match(ps, tr, ratio=1, caliper=0.2, order=order)
        assert var.n_treated_matched >= first.n_treated_matched


def test_set_ids_and_weights_cover_all_units():
    ps = np.array([0.2, 0.21, 0.5, 0.52, 0.9, 0.3])
    tr = np.array([1, 0, 1, 0, 1, 0])
    res = match(ps, tr, caliper=None, order="closest")
    sid = res.set_ids()
    assert sid.shape == (6,)
    assert sid[0] == sid[1] and sid[2] == sid[3]
    assert set(res.index().tolist()) == {0, 1, 2, 3, 4, 5}


def test_caliper_scales():
    ps = np.array([0.30, 0.32, 0.60, 0.70])
    tr = np.array([1, 0, 1, 0])
    on_ps = match(ps, tr, caliper=0.05, caliper_scale="ps", order="closest")
    assert _pairs(on_ps) == {0: 1}
    on_logit = match(ps, tr, caliper=0.5, caliper_scale="logit", order="closest")
    assert _pairs(on_logit) == {0: 1, 2: 3}


@pytest.mark.parametrize("kwargs, text", [
    ({"caliper": -1}, "'caliper'"), ({"ratio": 0}, "'ratio'"), ({"order": "best"}, "'order'"),
    ({"caliper_scale": "sd"}, "'caliper_scale'"),
])
def test_bad_settings_name_the_parameter(kwargs, text):
    with pytest.raises(InputError) as info:
        match([0.2, 0.4], [1, 0], **kwargs)
    assert text in info.value.render()


def test_bad_ps_and_single_group():
    with pytest.raises(InputError, match="single group"):
        match([0.2, 0.4], [1, 1])
    with pytest.raises(InputError, match=r"\(0, 1\).*row 1"):
        match([0.2, 1.0], [1, 0])
    with pytest.raises(InputError, match="0/1"):
        match([0.2, 0.3], [1, 2])


def test_keywords_are_the_study_settings_fields():
    # The study runner calls match(ps, t, **MatchingSettings().model_dump()) and
    # fit_propensity(X, t, **PropensitySettings().model_dump()): the names must stay in step.
    import inspect

    from follicle.causal import fit_propensity

    assert [p for p in inspect.signature(match).parameters][2:] == \
        ["caliper", "caliper_scale", "ratio", "variable_ratio", "order", "seed"]
    assert [p for p in inspect.signature(fit_propensity).parameters][2:] == ["penalty", "cv_folds", "max_iter"]
    defaults = {k: v.default for k, v in inspect.signature(match).parameters.items()}
    assert (defaults["caliper"], defaults["caliper_scale"], defaults["order"]) == (0.1, "std_logit", "random")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_plain_kernels_give_the_compiled_kernels_pairs(seed):
    """The plain-Python kernels (used below PLAIN_MAX_UNITS, no compilation) match exactly the
    numba kernels' pairs, with ties in the score, a caliper and controls already used."""
    from follicle.causal import _greedy, _greedy_py

    rng = np.random.default_rng(seed)
    n = 3000
    x = np.round(rng.normal(size=n), 2 if seed % 2 else 6)  # rounding makes many ties
    tr = rng.random(n) < 0.4
    width = [0.01, 0.05, math.inf, 0.0][seed]
    active = rng.random(n) < 0.9
    np.testing.assert_array_equal(_greedy_py.closest_pairs(x, tr, active, width),
                                  _greedy.closest_pairs(x, tr, active, width))
    tord = rng.permutation(np.flatnonzero(tr)).astype(np.int64)
    cpos = np.flatnonzero(~tr)
    controls = cpos[np.argsort(x[cpos], kind="stable")].astype(np.int64)
    used0 = rng.random(controls.shape[0]) < 0.2
    u1, u2 = used0.copy(), used0.copy()
    np.testing.assert_array_equal(_greedy_py.ordered_nearest(x, tord, controls, width, u1),
                                  _greedy.ordered_nearest(x, tord, controls, width, u2))
    np.testing.assert_array_equal(u1, u2)


def test_match_dispatches_to_the_compiled_kernels_above_the_threshold(monkeypatch):
    """Both sides of PLAIN_MAX_UNITS give the same matched sets (both orders, 1:3 variable ratio)."""
    from follicle.causal import _greedy_py

    rng = np.random.default_rng(5)
    ps = rng.beta(2, 3, 4000)
    tr = rng.random(4000) < ps
    for kw in ({"order": "random", "seed": 3}, {"order": "closest"}, {"order": "closest", "ratio": 3, "variable_ratio": True}):
        plain = match(ps, tr, **kw)
        monkeypatch.setattr(_greedy_py, "PLAIN_MAX_UNITS", 10)
        compiled = match(ps, tr, **kw)
        monkeypatch.undo()
        for col in ("treated", "control", "set_id"):
            np.testing.assert_array_equal(getattr(plain, col), getattr(compiled, col))
        assert plain.n_pairs > 1000
