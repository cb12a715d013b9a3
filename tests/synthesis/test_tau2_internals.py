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


@pytest.mark.parametrize("method", ["REML", "ML", "EB"])
@pytest.mark.parametrize("p", [1, 2])
def test_fallback_finds_what_converged_iteration_finds(method, p):
    """Cut the iteration short (maxiter=2) so the fallback must run: it lands on the same tau2
    (EB: the Paule-Mandel root, the same estimating equation; its own iteration can fail too)."""
    from follicle.synthesis.tau2 import fit_tau2

    rng = np.random.default_rng(10 * p)
    checked = 0
    for _ in range(40):
        k = int(rng.integers(5, 25))
        v = rng.uniform(0.01, 0.5, k)
        X = np.column_stack([np.ones(k)] + [np.sqrt(v)] * (p - 1))
        y = rng.normal(0, rng.uniform(0, 0.6), k) + rng.normal(0, np.sqrt(v))
        full = fit_tau2(y, v, "PM" if method == "EB" else method, X)
        short = fit_tau2(y, v, method, X, maxiter=2)
        assert "fallback" not in full.algorithm
        if "fallback" in short.algorithm:
            checked += 1
            assert "did not converge in 2 iterations" in short.note
        assert short.tau2 == pytest.approx(full.tau2, rel=1e-9, abs=1e-12)
    assert checked >= 10
