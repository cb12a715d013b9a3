"""metafor's dat.bcg (13 BCG vaccine trials; Colditz et al. 1994): every number in
shared/reference/validation.md reproduced to 4 decimals.

Source of the reference numbers: metafor reference pages rma.uni, rma.mh, rma.peto, confint.rma,
predict.rma and metafor's test file test_misc_metan_vs_rma.uni_with_dat.bcg.r, as collected in
shared/reference/validation.md ("Meta-analysis: metafor dat.bcg").
"""

import numpy as np
import pytest

from follicle.synthesis.effect_sizes import binary_effects
from follicle.synthesis.heterogeneity import heterogeneity, qprofile_tau2_ci
from follicle.synthesis.pooling import meta_analysis

TPOS = [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27]
TNEG = [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886]
CPOS = [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29]
CNEG = [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825]


def bcg(measure: str):
    return binary_effects(TPOS, np.add(TPOS, TNEG), CPOS, np.add(CPOS, CNEG), measure=measure)


def r4(x: float) -> float:
    return round(float(x), 4)


@pytest.mark.parametrize(
    "method, knha, est, se, lo, hi, tau2, i2",
    [
        ("REML", False, -0.7145, 0.1798, -1.0669, -0.3622, 0.3132, 92.22),
        ("DL", False, -0.7141, 0.1787, -1.0644, -0.3638, 0.3088, 92.12),
        ("EE", False, -0.4303, 0.0405, -0.5097, -0.3509, 0.0, 92.12),
        ("REML", True, -0.7145, 0.1808, -1.1084, -0.3206, 0.3132, 92.22),
    ],
)
def test_log_rr_pooled(method, knha, est, se, lo, hi, tau2, i2):
    res = meta_analysis(bcg("RR"), method=method, knha=knha)
    assert (r4(res.estimate), r4(res.se), r4(res.ci_low), r4(res.ci_high), r4(res.tau2)) == (est, se, lo, hi, tau2)
    assert round(res.i2, 2) == i2
    assert r4(res.q) == 152.2330 and res.q_df == 12
    if knha:
        assert res.df == 12  # t with k - 1 df


def test_reml_qprofile_ci_and_prediction_interval():
    res = meta_analysis(bcg("RR"), method="REML")
    # tau^2 CI [0.1197, 1.1115] (confint.rma)
    assert (r4(res.tau2_ci_low), r4(res.tau2_ci_high)) == (0.1197, 1.1115)
    # prediction interval about [-1.87, 0.44]; RR 0.49 [0.34, 0.70] (predict.rma, transf=exp)
    assert (round(res.pi_low, 2), round(res.pi_high, 2)) == (-1.87, 0.44)
    e = res.exp()
    assert (round(e["estimate"], 2), round(e["ci_low"], 2), round(e["ci_high"], 2)) == (0.49, 0.34, 0.70)


def test_reml_i2_ci_with_metafors_root_tolerance():
    """I^2 CI [81.9177, 97.6781]: metafor's confint solves with uniroot's default tolerance
    (eps^0.25), which moves the lower bound in the third decimal; with that tolerance and R's
    algorithm we get the published digits, and with a tight tolerance the exact root (81.9206,
    which R gives with control=list(tol=1e-12); checked in test_vs_metafor)."""
    es = bcg("RR")
    res = meta_analysis(es, method="REML")
    het = heterogeneity(es.yi, es.vi)
    lo, hi = qprofile_tau2_ci(es.yi, es.vi, tau2_hint=res.tau2, r_tol=np.finfo(float).eps ** 0.25)
    assert (r4(het.i2(lo)), r4(het.i2(hi))) == (81.9177, 97.6781)
    assert r4(res.i2_ci_low) == 81.9206 and r4(res.i2_ci_high) == 97.6781


def test_mantel_haenszel():
    mh_or = meta_analysis(bcg("OR"), method="MH")
    assert (r4(mh_or.estimate), r4(mh_or.se), r4(mh_or.ci_low), r4(mh_or.ci_high)) == (-0.4734, 0.0410, -0.5538, -0.3930)
    assert r4(mh_or.extra["cmh"]) == 135.6889
    assert r4(mh_or.extra["tarone"]) == 171.7567
    mh_rr = meta_analysis(bcg("RR"), method="MH")
    assert (r4(mh_rr.estimate), r4(mh_rr.se)) == (-0.4537, 0.0393)


def test_peto():
    res = meta_analysis(bcg("OR"), method="PETO")
    assert (r4(res.estimate), r4(res.se), r4(res.ci_low), r4(res.ci_high)) == (-0.4744, 0.0407, -0.5541, -0.3948)
    assert r4(res.q) == 167.7302


def test_dl_tau2_truncated_at_zero():
    """validation.md: DL tau^2 is truncated at 0 (statsmodels' combine_effects is not)."""
    es = binary_effects([10, 11, 12], [100, 100, 100], [10, 11, 12], [100, 100, 100], measure="RR")
    res = meta_analysis(es, method="DL")
    assert res.tau2 == 0.0 and res.i2 == 0.0
