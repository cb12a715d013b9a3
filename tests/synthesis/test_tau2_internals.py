"""The O(k p^2) quadratic forms used by the tau^2 estimators equal the dense-matrix definitions."""

import numpy as np
import pytest

from follicle.synthesis.tau2 import TAU2_METHODS, estimate_tau2, p_forms, p_matrix


@pytest.mark.parametrize("p", [1, 2, 3])
def test_p_forms_match_dense_p_matrix(p):
    rng = np.random.default_rng(p)
    k = 12
    X = np.column_stack([np.ones(k)] + [rng.normal(size=k) for _ in range(p - 1)])
    y = rng.normal(size=k)
    v = rng.uniform(0.05, 0.5, k) + 0.1
    P = p_matrix(v, X)
    expected = (y @ P @ y, np.trace(P), y @ P @ P @ y, np.trace(P @ P))
    assert p_forms(y, 1 / v, X) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", TAU2_METHODS)
def test_tau2_is_never_negative_and_zero_for_identical_estimates(method):
    y = np.array([0.2, 0.2, 0.2, 0.2])
    v = np.array([0.1, 0.2, 0.05, 0.3])
    assert estimate_tau2(y, v, method) == 0.0
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert estimate_tau2(rng.normal(0, 0.1, 6), rng.uniform(0.1, 0.5, 6), method) >= 0.0


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="'method' parameter must be one of"):
        estimate_tau2([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], "XYZ")
