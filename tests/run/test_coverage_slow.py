"""Coverage of the true effect on a 200k-person synthetic world (issue 6, "Done when").

The bundled study (studies/jaki_neuropsych.yaml) is run on a 200,000-person world built with
:func:`follicle.synth.build.build_world`; the true marginal hazard ratio of every comparison x
outcome pair (the 9 neuropsychiatric outcomes and the 6 negative controls, true HR 1, of both
comparisons: 30 pairs) comes from the world's own truth JSON. The acceptance rule: the true HR
lies inside the 95% CI (uncalibrated Cox CI, cluster-robust SEs) for at least 90% of the pairs,
and the balance diagnostic (max |SMD| after matching < the spec's 0.1) passes for both comparisons.

Slow (about 1.5 minutes to build the world and a few minutes for the study on the shared 2-core
machine): run with ``pytest -m slow tests/run/test_coverage_slow.py``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from follicle.run.study import run_study
from follicle.study.spec import load_spec
from follicle.synth.build import build_world

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"
PERSONS, SEED = 200_000, 1

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coverage")
    db, truth_path = tmp / "world.duckdb", tmp / "truth.json"
    w, _, _ = build_world(PERSONS, SEED, db, truth_path=truth_path)
    return tmp, db, w, json.loads(truth_path.read_text())


@pytest.fixture(scope="module")
def study_and_truth(world):
    tmp, db, _, truth = world
    done = run_study(load_spec(STUDY), db, tmp / "out")
    return done.results, truth


def _pairs(results: dict, truth: dict) -> list[dict]:
    true_hr = {(e["comparison"], e["outcome"]): e["true_hr"] for e in truth["effects"]}
    rows = []
    for comp in results["comparisons"]:
        for o in comp["outcomes"]:
            key = (comp["id"], o["outcome"])
            assert key in true_hr, f"no true HR for {key} in the world's truth JSON"
            rows.append({"pair": key, "true_hr": true_hr[key], "hr": o.get("hr"),
                         "low": o.get("hr_ci_low"), "high": o.get("hr_ci_high")})
    return rows


def test_true_hr_inside_95ci_for_at_least_90_percent_of_pairs(study_and_truth):
    results, truth = study_and_truth
    rows = _pairs(results, truth)
    assert len(rows) == 30  # 2 comparisons x (9 outcomes + 6 negative controls)
    negative_controls = [r for r in rows if r["pair"][1] in {"ingrowing_nail", "ankle_sprain", "wrist_sprain",
                                                             "otitis_media", "ankle_fracture", "impacted_cerumen"}]
    assert len(negative_controls) == 12 and all(r["true_hr"] == 1.0 for r in negative_controls)
    # a pair without an estimate (withheld or not estimable) counts as a miss
    covered = [r for r in rows if r["hr"] is not None and r["low"] <= r["true_hr"] <= r["high"]]
    misses = [r for r in rows if r not in covered]
    coverage = len(covered) / len(rows)
    print(f"\ncoverage {len(covered)}/{len(rows)} = {coverage:.3f}; misses: "
          + "; ".join(f"{r['pair']}: true {r['true_hr']:.3f}, CI {r['low']}-{r['high']}" for r in misses))
    assert coverage >= 0.90, misses


def test_balance_diagnostic_passes_for_both_comparisons(study_and_truth):
    results, _ = study_and_truth
    assert len(results["comparisons"]) == 2
    for comp in results["comparisons"]:
        balance = [d for d in comp["diagnostics"] if d["name"].startswith("max |SMD|")]
        assert len(balance) == 1, comp["diagnostics"]
        print(f"\n{comp['id']}: max |SMD| after matching {balance[0]['value']:.4f} ({balance[0]['status']})")
        assert balance[0]["status"] == "PASS", (comp["id"], balance[0])
        assert balance[0]["value"] < 0.1


def _bench_module():
    path = REPO / "bench" / "coverage_adjustments.py"
    spec = importlib.util.spec_from_file_location("coverage_adjustments", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_adjustment_covers_its_estimand(world):
    """The bundled study with five adjustments (bench/coverage_adjustments.py) on the same world:
    matching and IPTW for the ATT are scored against the ATT truth (target-class initiators), IPTW for
    the ATE and the 5 PS strata against the ATE truth (both classes' initiators); each must cover its
    truth for at least 25 of the 30 comparison x outcome pairs (nominal 95%: 28.5). docs/
    adjustments-coverage.md holds the table over 20 replicate worlds."""
    tmp, db, w, att = world
    bench = _bench_module()
    ate = w.truth(estimand="ate")
    true = {"ATT": {(e["comparison"], e["outcome"]): e["true_hr"] for e in att["effects"]},
            "ATE": {(e["comparison"], e["outcome"]): e["true_hr"] for e in ate["effects"]}}
    done = run_study(bench.study_spec(), db, tmp / "adjustments")
    for name, estimand in bench.TARGETS.items():
        if estimand is None:
            continue
        covered, total = 0, 0
        for comp in done.results["comparisons"]:
            for o in comp["outcomes"]:
                e = next(e for e in o["estimates"] if e["name"] == name)
                t = true[estimand][(comp["id"], o["outcome"])]
                total += 1
                covered += e.get("hr") is not None and e["hr_ci_low"] <= t <= e["hr_ci_high"]
        print(f"\n{name} ({estimand}): {covered}/{total}")
        assert total == 30 and covered >= 25, (name, covered)
