"""Exact Poisson intervals against R's poisson.test (differential) and a hand-checked case."""

import numpy as np
import pytest

from follicle.survival.rates import incidence_rate, poisson_exact_ci
from rbridge import run_r


def test_zero_events_lower_limit_is_zero():
    low, high = poisson_exact_ci(0)
    assert low == 0.0
    # 0 events: upper limit -log(0.025) = 3.6889 (Garwood 1936)
    assert high == pytest.approx(-np.log(0.025), rel=1e-12)


def test_rate_scales_with_per():
    r100 = incidence_rate(34, 1868.0, per=100)
    r1000 = incidence_rate(34, 1868.0, per=1000)
    assert r1000.rate == pytest.approx(10 * r100.rate)
    assert r100.ci_low < r100.rate < r100.ci_high


@pytest.mark.r
def test_matches_r_poisson_test(rscript):
    rng = np.random.default_rng(7)
    events = rng.integers(0, 60, size=12).tolist()
    pys = rng.uniform(10, 5000, size=12).round(3).tolist()
    code = "".join(
        f'r <- poisson.test({e}, {t}); out("ci{i}", r$conf.int)\n' for i, (e, t) in enumerate(zip(events, pys))
    )
    ref = run_r(rscript, code)
    for i, (e, t) in enumerate(zip(events, pys)):
        ir = incidence_rate(e, t, per=1.0)
        assert ir.ci_low == pytest.approx(ref[f"ci{i}"][0], rel=1e-6, abs=1e-12)
        assert ir.ci_high == pytest.approx(ref[f"ci{i}"][1], rel=1e-6)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="person_years"):
        incidence_rate(3, 0.0)
    with pytest.raises(ValueError, match="events"):
        poisson_exact_ci(-1)
