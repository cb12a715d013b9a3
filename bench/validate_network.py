"""Validation of network pooling (issue 18, point 4; figures in docs/network.md).

Simulated networks of sites (:mod:`follicle.synth.sites`): a binary confounder raising both the
odds of treatment (by a site-specific log OR) and the hazard (x2), sites of different sizes, a true
HR of 1.5. Each site fits its Cox model stratified on the confounder (its adjustment) and shares
the estimate and the profile likelihood. Per replicate network (a new seed each):

- reference: a Cox model stratified by site x confounder on the union of the sites' rows;
- likelihood pool (fixed; random), normal-approximation pool (inverse variance; REML + HKSJ);
- |difference in log HR| from the reference; coverage of the true log HR by each 95% CI.

Scenarios: "mixed" (4 sites, 5,000 to 300 persons, the smallest with about 10 events) and "small"
(10 sites of 250-500 persons, 8-20 events each) and "tiny" (20 sites of 300-500 persons, 3-10
events each): where the normal approximation goes wrong.

Run: PYTHONPATH=src python bench/validate_network.py [replicates]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from follicle.survival import fit_outcome_model
from follicle.survival.profile import cox_profile
from follicle.synth.sites import simulate_network
from follicle.synthesis import generic_effects, meta_analysis
from follicle.synthesis.likelihood import pool_fixed, pool_random

TRUE = float(np.log(1.5))
SCENARIOS = {
    "mixed": [(5000, 1e-4, 0.3, 1.0), (2500, 1e-4, 0.5, 0.3), (1000, 1e-4, 0.2, 2.0), (300, 8e-5, 0.6, 1.5)],
    "small": [(n, 1e-4, p, c) for n, p, c in zip((250, 300, 350, 400, 450, 500, 280, 320, 380, 420),
                                                  (0.2, 0.3, 0.4, 0.5, 0.6, 0.3, 0.4, 0.5, 0.2, 0.6),
                                                  (0.5, 1.0, 1.5, 2.0, 0.3, 0.8, 1.2, 1.8, 2.2, 0.6))],
    "tiny": [(n, 5e-5, 0.2 + 0.04 * i, 0.1 * i) for i, n in enumerate([300, 350, 400, 450, 500] * 4)],
}


def one(seed: int, sites_spec: list) -> dict[str, float] | None:
    sites = simulate_network(seed, TRUE, sites_spec)
    rows, profiles, events = [], [], []
    for s in sites:
        if s.event[s.treatment == 1].sum() == 0 or s.event[s.treatment == 0].sum() == 0:
            return None  # a site with no events in an arm shares no estimate: skip the replicate
        row = fit_outcome_model(s.time, s.event, s.treatment, robust_se=False, stratify_by_pair=True,
                                pair_id=s.confounder).row()
        rows.append(row)
        events.append(int(s.event.sum()))
        profiles.append(cox_profile(s.time, s.event, s.treatment, center=row["coef"], se=row["se"], strata=s.confounder))
    time_ = np.concatenate([s.time for s in sites])
    event = np.concatenate([s.event for s in sites])
    t = np.concatenate([s.treatment for s in sites])
    stratum = np.concatenate([i * 2 + s.confounder for i, s in enumerate(sites)])
    ref = fit_outcome_model(time_, event, t, robust_se=False, stratify_by_pair=True, pair_id=stratum).row()
    pr = [(p.beta, p.loglik) for p in profiles]
    lik, lik_r = pool_fixed(pr), pool_random(pr)
    es = generic_effects([r["coef"] for r in rows], [r["se"] for r in rows], measure="HR")
    nf, nr = meta_analysis(es, method="EE", qprofile=False), meta_analysis(es, method="REML", knha=True, qprofile=False)
    ref_lo, ref_hi = np.log(ref["ci_low"]), np.log(ref["ci_high"])
    return {"ref": ref["coef"], "lik": lik.log_hr, "lik_r": lik_r.log_hr, "nf": nf.estimate, "nr": nr.estimate,
            "cov_ref": ref_lo <= TRUE <= ref_hi, "cov_lik": lik.ci_low <= TRUE <= lik.ci_high,
            "cov_lik_r": lik_r.ci_low <= TRUE <= lik_r.ci_high, "cov_nf": nf.ci_low <= TRUE <= nf.ci_high,
            "cov_nr": nr.ci_low <= TRUE <= nr.ci_high, "min_events": min(events)}


def main(reps: int) -> None:
    t0 = time.perf_counter()
    for name, spec in SCENARIOS.items():
        runs = [r for r in (one(1000 + i, spec) for i in range(reps)) if r is not None]
        get = lambda k: np.array([r[k] for r in runs], dtype=float)  # noqa: E731
        print(f"\nscenario {name}: {len(runs)} replicate networks of {len(spec)} sites "
              f"(fewest events at a site: median {np.median(get('min_events')):.0f}, min {get('min_events').min():.0f})")
        print(f"{'method':<32} {'max |d| vs ref':>14} {'mean |d|':>9} {'bias vs truth':>13} {'coverage':>9}")
        ref = get("ref")
        print(f"{'site-stratified Cox on union':<32} {0:>14.4f} {0:>9.4f} {np.mean(ref - TRUE):>13.4f} "
              f"{np.mean(get('cov_ref')):>9.3f}")
        for key, cov, label in (("lik", "cov_lik", "likelihood, fixed"), ("lik_r", "cov_lik_r", "likelihood, random"),
                                ("nf", "cov_nf", "normal, fixed (inverse variance)"),
                                ("nr", "cov_nr", "normal, random (REML + HKSJ)")):
            d = np.abs(get(key) - ref)
            print(f"{label:<32} {d.max():>14.4f} {d.mean():>9.4f} {np.mean(get(key) - TRUE):>13.4f} "
                  f"{np.mean(get(cov)):>9.3f}")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
