"""Propensity-score models: R glm differential test, separation, sparse and penalised fits, AUC,
preference score and equipoise, and the scikit-learn fitted-object contract."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from follicle.causal import PropensityModel, equipoise, fit_propensity, preference_score, ps_auc
from follicle.errors import InputError

from rbridge import run_r


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "age": rng.normal(45, 12, n),
        "female": rng.integers(0, 2, n),
        "salt": rng.uniform(50, 100, n),
        "atopy": (rng.random(n) < 0.3).astype(int),
    })
    lp = -4 + 0.03 * X.age + 0.4 * X.female + 0.02 * X.salt - 0.5 * X.atopy
    t = (rng.random(n) < expit(lp)).astype(int)
    return X, t


@pytest.mark.r
def test_logistic_coefficients_match_r_glm(rscript):
    X, t = _data()
    frame = X.assign(t=t)
    out = run_r(rscript, """
fit <- glm(t ~ age + female + salt + atopy, family = binomial, data = d,
           control = glm.control(epsilon = 1e-14, maxit = 100))
out("coef", coef(fit))
out("se", sqrt(diag(vcov(fit))))
""", {"d": frame})
    model = fit_propensity(X, t)
    coef = np.concatenate([[model.intercept_], model.coef_])
    np.testing.assert_allclose(coef, out["coef"], rtol=1e-6)
    np.testing.assert_allclose(model.se_, out["se"], rtol=1e-6)


def test_matches_statsmodels_and_sparse_input():
    import statsmodels.api as sm

    X, t = _data(seed=1)
    ref = sm.Logit(t, sm.add_constant(X)).fit(disp=0, tol=1e-12)
    dense = fit_propensity(X, t)
    sparse = fit_propensity(sp.csr_matrix(X.to_numpy()), t)
    np.testing.assert_allclose(np.r_[dense.intercept_, dense.coef_], ref.params, rtol=1e-7)
    np.testing.assert_allclose(dense.se_, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9)
    np.testing.assert_allclose(dense.ps_, ref.predict(), rtol=1e-7)
    assert list(dense.feature_names_in_) == list(X.columns)


def test_penalised_fit_on_large_sparse_covariates():
    rng = np.random.default_rng(2)
    n, p = 6000, 300
    X = sp.random(n, p, density=0.05, format="csr", random_state=3, data_rvs=lambda k: np.ones(k))
    beta = np.zeros(p)
    beta[:5] = [1.2, -1.2, 1.0, 1.0, -1.0]
    t = (rng.random(n) < expit(-0.3 + X @ beta)).astype(int)
    for penalty in ("l1", "l2"):
        model = fit_propensity(X, t, penalty=penalty, cv_folds=3)
        assert np.isfinite(model.C_)
        assert np.isnan(model.se_).all()
        assert np.all(np.sign(model.coef_[:5]) == np.sign(beta[:5]))
        assert np.abs(model.coef_[:5]).mean() > 3 * np.abs(model.coef_[5:]).mean()
        assert 0.6 < model.auc_ < 0.9
    l1 = fit_propensity(X, t, penalty="l1", cv_folds=3)
    assert (l1.coef_ == 0).sum() > p / 3  # the lasso drops most noise covariates


def test_single_covariate_separation_names_the_covariate():
    X, t = _data(500)
    with pytest.raises(InputError) as info:
        fit_propensity(X.assign(prior_jaki=t), t)
    assert "'prior_jaki'" in info.value.render() and "perfectly" in info.value.render()
    # quasi-complete: present only in some treated -> infinite ML coefficient
    quasi = X.assign(rare=((t == 1) & (X.age > 50)).astype(int))
    with pytest.raises(InputError, match="separated") as info:
        fit_propensity(quasi, t)
    assert "'rare'" in info.value.render()
    # a penalised fit copes with quasi-separation, but not with complete separation
    assert np.isfinite(fit_propensity(quasi, t, penalty="l2").coef_).all()
    with pytest.raises(InputError, match="separated"):
        fit_propensity(X.assign(prior_jaki=t), t, penalty="l2")


def test_separation_by_a_combination_is_reported():
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    t = (X.a + X.b > 0).astype(int)
    with pytest.raises(InputError, match="separates treated from untreated") as info:
        fit_propensity(X, t)
    assert "'a'" in info.value.render()


def _message(func, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        func(*args, **kwargs)
    return info.value.render()


def test_bad_input_messages():
    X, t = _data(200)
    assert "single group" in _message(fit_propensity, X, np.ones(200))
    msg = _message(fit_propensity, X.assign(age=X.age.where(X.index != 7)), t)
    assert "'age' has missing values (first at row 7)" in msg
    assert "'sex' is not numeric" in _message(fit_propensity, X.assign(sex="F"), t)
    msg = _message(fit_propensity, X.assign(age2=2 * X.age), t)
    assert "collinear" in msg and ("'age'" in msg or "'age2'" in msg)
    assert "'penalty'" in _message(fit_propensity, X, t, penalty="lasso")
    assert "2 rows" not in _message(fit_propensity, X.iloc[:5], t)  # row-count mismatch is reported
    assert "has 200" in _message(fit_propensity, X.iloc[:5], t)


def test_sklearn_contract():
    X, t = _data(300)
    est = PropensityModel(penalty="none", max_iter=50)
    assert est.get_params()["max_iter"] == 50
    assert not hasattr(est, "coef_")
    with pytest.raises(NotFittedError):
        est.predict_ps(X)
    assert est.fit(X, t) is est
    again = clone(est).fit(X, t)
    np.testing.assert_array_equal(again.coef_, est.coef_)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_ps(X), est.predict_ps(X))
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0)


def test_auc_preference_equipoise():
    X, t = _data(2000, seed=5)
    model = fit_propensity(X, t)
    assert model.auc_ == pytest.approx(roc_auc_score(t, model.ps_), rel=1e-12)
    assert ps_auc(np.r_[0.1, 0.1, 0.5], [0, 1, 1]) == pytest.approx(0.75)  # tie counts half
    # Walker 2013: logit(F) = logit(PS) - logit(P); with P = 0.5 the preference equals the PS
    ps = np.array([0.2, 0.5, 0.8, 0.6])
    np.testing.assert_allclose(preference_score(ps, [0, 1, 0, 1]), ps)
    share = t.mean()
    f = preference_score(model.ps_, t)
    lf = np.log(f / (1 - f))
    np.testing.assert_allclose(lf, np.log(model.ps_ / (1 - model.ps_)) - np.log(share / (1 - share)), rtol=1e-9)
    assert model.equipoise_ == pytest.approx(np.mean((f >= 0.3) & (f <= 0.7)))
    assert equipoise(ps, [0, 1, 0, 1]) == 0.5
