"""Cox model: published rossi reference, lifelines as a peer, fast path = general path, contract."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi

from follicle.errors import InputError
from follicle.survival import CoxPH, cox_zph, fit_outcome_model
from follicle.survival import _cox_kernel as kernel
from survdata import matched_cohort


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return load_rossi()


def test_rossi_published_reference(rossi):
    # Source: lifelines documentation "Survival regression" (CoxPHFitter on rossi, Efron ties) and
    # R survival coxph, as recorded in shared/reference/validation.md: fin -0.37942217, LL -658.74766.
    X = rossi.drop(columns=["week", "arrest"])
    m = CoxPH(ties="efron").fit(X, rossi["week"], rossi["arrest"])
    assert m.summary_.loc["fin", "coef"] == pytest.approx(-0.37942217, abs=5e-9)
    assert m.loglik_ == pytest.approx(-658.74766, abs=5e-6)
    assert list(m.summary_.columns) == ["coef", "se", "hr", "ci_low", "ci_high", "z", "p"]


def test_matches_lifelines_on_rossi(rossi):
    X = rossi.drop(columns=["week", "arrest"])
    ours = CoxPH().fit(X, rossi["week"], rossi["arrest"])
    ll = CoxPHFitter().fit(rossi, "week", "arrest")
    assert ours.coef_ == pytest.approx(ll.params_[X.columns].to_numpy(), rel=1e-6)
    assert ours.se_ == pytest.approx(ll.standard_errors_[X.columns].to_numpy(), rel=1e-5)
    assert ours.loglik_ == pytest.approx(ll.log_likelihood_, rel=1e-9)
    # (robust SEs are checked against R's coxph in test_survival_vs_r.py; lifelines' robust
    # variance uses different residuals with tied times and does not match R on rossi)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("tie_scale", [1.0, 1e-6])
def test_binary_collapsed_path_equals_general_path(ties, tie_scale):
    d = matched_cohort(seed=3, n_pairs=400, tie_scale=tie_scale)
    t, e, x = d["time"].to_numpy(), d["event"].to_numpy().astype(bool), d[["treat"]].to_numpy(float)
    fast = kernel.prepare(t, e, x, ties=ties)
    # a constant stratum forces the general (uncollapsed) path on the same data
    slow = kernel.prepare(t, e, x, strata=np.zeros(len(t), dtype=np.int64), ties=ties)
    slow.bin_log_n0 = None  # and the general p-covariate likelihood instead of the binary totals
    if tie_scale == 1.0:
        assert len(fast.w_risk) < len(slow.w_risk)  # the fast path really collapsed rows
    b_fast, ll_fast, *_ = kernel.newton(fast)
    b_slow, ll_slow, *_ = kernel.newton(slow)
    assert b_fast == pytest.approx(b_slow, rel=1e-10)
    assert ll_fast == pytest.approx(ll_slow, rel=1e-12)
    var = np.linalg.inv(kernel.loglik_derivs(fast, b_fast)[2])
    cl = d["pair"].to_numpy()
    assert kernel.robust_variance(fast, b_fast, var, cl) == pytest.approx(
        kernel.robust_variance(slow, b_slow, var, cl), rel=1e-9)


def test_fit_outcome_model_defaults_to_robust_pair_clusters():
    d = matched_cohort(seed=5)
    res = fit_outcome_model(d["time"], d["event"], d["treat"], pair_id=d["pair"])
    assert res.robust and not res.stratified and res.ties == "efron"
    assert res.summary.index.tolist() == ["treat"]
    row = res.row()
    assert row["hr"] == pytest.approx(np.exp(row["coef"]))
    assert row["ci_low"] < row["hr"] < row["ci_high"]
    as_dict = res.to_dict()
    assert as_dict["terms"][0]["term"] == "treat" and as_dict["terms"][0]["coef"] == row["coef"]
    assert as_dict["robust"] is True and as_dict["n"] == len(d)
    with pytest.raises(ValueError, match="pair_id"):
        fit_outcome_model(d["time"], d["event"], d["treat"], stratify_by_pair=True)


def test_estimator_contract():
    d = matched_cohort(seed=8)
    model = CoxPH(ties="breslow", robust=True)
    assert model.get_params() == {"ties": "breslow", "robust": True, "conf_level": 0.95, "tol": 1e-10, "max_iter": 50}
    assert not hasattr(model, "coef_")
    assert model.fit(d[["treat", "age"]], d["time"], d["event"]) is model
    first = model.coef_.copy()
    model.fit(d[["treat", "age"]], d["time"], d["event"])
    assert np.array_equal(first, model.coef_)  # idempotent
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.coef_, model.coef_)
    with pytest.raises(ValueError, match="'ties' parameter"):
        CoxPH(ties="exact").fit(d[["treat"]], d["time"], d["event"])
    with pytest.raises(AttributeError, match="not fitted"):
        CoxPH().result()


def test_infinite_coefficient_is_flagged():
    # no events in the treated arm: the MLE of log HR is -infinity (monotone likelihood)
    t = np.arange(1.0, 21.0)
    treat = np.tile([1.0, 0.0], 10)
    event = 1 - treat
    m = CoxPH().fit(pd.DataFrame({"treat": treat}), t, event)
    assert m.coef_[0] == -np.inf and m.summary_.loc["treat", "hr"] == 0.0
    assert m.warnings_ and "covariate 'treat'" in m.warnings_[0] and "infinite" in m.warnings_[0]


def test_zph_rejects_unfitted_model(rossi):
    with pytest.raises(AttributeError, match="fitted"):
        cox_zph(CoxPH(), rossi[["fin"]], rossi["week"], rossi["arrest"])


def test_constant_covariate_is_named():
    d = matched_cohort(seed=2)
    with pytest.raises(InputError, match="'one'.*single value"):
        CoxPH().fit(d[["treat"]].assign(one=1.0), d["time"], d["event"])


def test_sklearn_clone():
    from sklearn.base import clone

    model = CoxPH(ties="breslow", robust=True, conf_level=0.9)
    assert clone(model).get_params() == model.get_params()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["efron", "breslow"]))
def test_cox_depends_on_time_only_through_ranks(seed, ties):
    rng = np.random.default_rng(seed)
    n = 60
    t = rng.integers(1, 12, n).astype(float)  # heavy ties
    treat = rng.integers(0, 2, n)
    event = rng.integers(0, 2, n)
    if event.sum() == 0 or treat.min() == treat.max():
        return
    X = pd.DataFrame({"treat": treat})
    a = CoxPH(ties=ties).fit(X, t, event)
    b = CoxPH(ties=ties).fit(X, np.exp(t / 3.0) + 5, event)  # strictly increasing transform
    if not (a.converged_ and b.converged_):
        return
    assert a.coef_ == pytest.approx(b.coef_, rel=1e-9, abs=1e-12)
    # the collapsed binary kernel agrees with the general kernel on the same data
    d_gen = kernel.prepare(t, event.astype(bool), X.to_numpy(float), strata=np.zeros(n, dtype=np.int64), ties=ties)
    d_gen.bin_log_n0 = None  # force the general p-covariate likelihood
    assert kernel.newton(d_gen)[0] == pytest.approx(a.coef_, rel=1e-8, abs=1e-10)


@pytest.mark.slow
def test_large_binary_cox_matches_lifelines():
    # the bench (bench/bench_survival.py) times 1M rows; this checks the coefficient at 200k rows
    rng = np.random.default_rng(2)
    n = 200_000
    x = rng.integers(0, 2, n)
    t = rng.exponential(1 / np.exp(-0.4 * x))
    c = rng.exponential(2.0, n)
    d = pd.DataFrame({"t": np.ceil(np.minimum(t, c) * 365), "e": (t <= c).astype(int), "x": x})
    ours = fit_outcome_model(d["t"], d["e"], d["x"], robust_se=False)
    ref = CoxPHFitter().fit(d, "t", "e")
    assert ours.coef[0] == pytest.approx(ref.params_["x"], rel=1e-6)
    assert ours.se[0] == pytest.approx(ref.standard_errors_["x"], rel=1e-5)


def test_collinear_covariate_is_named():
    d = matched_cohort(seed=2)
    X = d[["treat", "age"]].assign(age_months=d["age"] * 12 + 3)
    with pytest.raises(InputError, match="'age_months' is a linear combination"):
        CoxPH().fit(X, d["time"], d["event"])


def test_monotone_likelihood_named_and_uninformative_covariate_not_estimable():
    """x = -time orders every event first in its risk set: x's estimate is +inf, the supremum of the
    log partial likelihood is 0 (each risk set reduces to the event itself), and treat, which no
    remaining risk set compares, is not estimable (NaN) rather than a number from a singular fit.
    R's coxph runs out of iterations here (reaching loglik -38.9), so the reference is the math."""
    rng = np.random.default_rng(3)
    n = 120
    time = np.arange(1, n + 1, dtype=float)
    frame = pd.DataFrame({"x": -time, "treat": np.tile([0.0, 1.0], n // 2)})
    m = CoxPH().fit(frame, time, rng.random(n) < 0.7)
    assert m.coef_[0] == np.inf and "every event has the largest x" in m.infinite_["x"]
    assert m.loglik_ == 0.0
    assert np.isnan(m.coef_[1]) and np.isnan(m.se_[1]) and "not estimable" in m.infinite_["treat"]
    assert m.result().to_dict()["infinite"]["treat"].startswith("not estimable")
