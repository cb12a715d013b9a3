"""Slow: bias and coverage of PS-matched Cox estimates over 200 replicates of a confounded world
(bench/sim_coverage.py; truth = the marginal HR among the treated, computed by simulation)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sim_coverage.py"


@pytest.mark.slow
def test_matched_cox_bias_and_coverage_over_200_replicates():
    spec = importlib.util.spec_from_file_location("sim_coverage", BENCH)
    sim = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sim  # dataclasses look their module up there
    spec.loader.exec_module(sim)
    out = sim.run(reps=200)
    assert abs(out["matched_bias"]) < 0.03
    assert 0.92 <= out["matched_coverage"] <= 0.98
    assert abs(out["unadjusted_bias"]) > 0.3  # confounding: the crude estimate is visibly biased
