"""Single-arm analysis: exact Clopper-Pearson CIs against R's binom.test; the ruxolitinib pilot."""

import numpy as np
import pandas as pd
import pytest

from follicle.response.single_arm import clopper_pearson, mean_sd, responder_rate, single_arm_summary
from rbridge import run_r


def test_pilot_trial_responders_9_of_12():
    # mission.md section 5 (Columbia ruxolitinib pilot): 9 of 12 responded (75%)
    r = responder_rate(np.array([1] * 9 + [0] * 3))
    assert (r.responders, r.n, r.rate) == (9, 12, 0.75)
    # Clopper-Pearson 95% limits for 9/12, by the beta-quantile definition (Clopper & Pearson 1934):
    # R binom.test(9, 12)$conf.int = 0.4281415 0.9451394 (checked against R in the test below)
    assert r.ci_low == pytest.approx(0.4281415, abs=5e-8)
    assert r.ci_high == pytest.approx(0.9451394, abs=5e-8)


@pytest.mark.r
def test_pilot_trial_ci_equals_r(rscript):
    ref = run_r(rscript, 'out("ci", binom.test(9, 12)$conf.int)')["ci"]
    low, high = clopper_pearson(9, 12)
    assert low == pytest.approx(ref[0], rel=1e-6)
    assert high == pytest.approx(ref[1], rel=1e-6)


@pytest.mark.r
def test_clopper_pearson_matches_r_binom_test(rscript):
    rng = np.random.default_rng(11)
    cases = [(0, 5), (5, 5), (1, 1), (0, 1)] + [(int(rng.integers(0, n + 1)), int(n)) for n in rng.integers(2, 400, 20)]
    levels = [0.95, 0.9, 0.99]
    code = ""
    for i, (x, n) in enumerate(cases):
        code += f'out("c{i}", binom.test({x}, {n}, conf.level = {levels[i % 3]})$conf.int)\n'
    ref = run_r(rscript, code)
    for i, (x, n) in enumerate(cases):
        low, high = clopper_pearson(x, n, levels[i % 3])
        assert low == pytest.approx(ref[f"c{i}"][0], rel=1e-6, abs=1e-14)
        assert high == pytest.approx(ref[f"c{i}"][1], rel=1e-6)


def test_edges_and_bad_input():
    assert clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(10, 10)[1] == 1.0
    with pytest.raises(ValueError, match="x must"):
        clopper_pearson(11, 10)
    with pytest.raises(ValueError, match="n must"):
        clopper_pearson(0, 0)
    with pytest.raises(ValueError, match="evaluable"):
        responder_rate(pd.Series([np.nan, np.nan]))


def test_summary_mean_sd_among_responders():
    ep = pd.DataFrame({"responder": [1, 1, 1, 0], "regrowth_pct": [90.0, 100.0, 86.0, 10.0]})
    s = single_arm_summary(ep)
    assert s["responder_rate"]["responders"] == 3
    assert s["regrowth_responders"]["mean"] == pytest.approx(92.0)
    assert s["regrowth_responders"]["sd"] == pytest.approx(np.std([90, 100, 86], ddof=1))
    assert mean_sd([])[0] == 0
