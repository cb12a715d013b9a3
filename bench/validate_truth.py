"""Does a Levine-style study recover the world's true HRs? (slow check; not a unit test)

On a world of N persons: for each comparison, new users of each class as first systemic class
(>= 2 prescriptions, no psychiatric/sleep history before index) from ``World.cohort_frame``;
logistic propensity score on age, sex and the confounders; greedy 1:1 nearest-neighbour matching
on the logit PS (caliper 0.2 SD; Austin 2011); per outcome, drop persons with the outcome before
index and fit a Cox model (Breslow) on the matched set; compare the 95% CI with the true marginal
HR from ``World.truth()``. Prints coverage over comparison x outcome pairs.

    PYTHONPATH=src python bench/validate_truth.py [--persons 200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from sklearn.linear_model import LogisticRegression

from follicle.synth import simulate
from follicle.synth.config import CONFOUNDERS
from follicle.synth.truth import cox_binary

COVS = ["age_index", "female", *[c for c in CONFOUNDERS if c != "psych_history"]]


def match(ps_logit: np.ndarray, treat: np.ndarray, caliper: float) -> np.ndarray:
    """Greedy 1:1 nearest-neighbour matching without replacement; returns the kept row mask."""
    t_idx = np.flatnonzero(treat == 1)
    c_idx = np.flatnonzero(treat == 0)
    order = np.argsort(ps_logit[c_idx])
    c_sorted = c_idx[order]
    c_vals = ps_logit[c_sorted]
    used = np.zeros(len(c_sorted), bool)
    keep = np.zeros(len(treat), bool)
    rng = np.random.default_rng(0)
    for i in rng.permutation(t_idx):
        pos = np.searchsorted(c_vals, ps_logit[i])
        best, bd = -1, caliper
        lo, hi = pos - 1, pos
        while lo >= 0 and used[lo]:
            lo -= 1
        while hi < len(c_vals) and used[hi]:
            hi += 1
        for j in (lo, hi):
            if 0 <= j < len(c_vals) and abs(c_vals[j] - ps_logit[i]) <= bd:
                best, bd = j, abs(c_vals[j] - ps_logit[i])
        if best >= 0:
            used[best] = True
            keep[i] = True
            keep[c_sorted[best]] = True
    return keep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", default=None, help="world config (YAML/JSON); default world if omitted")
    ap.add_argument("--calendar", action="store_true", help="add index period (<2014, 2014-18, 2018-22, >=2022) to the PS")
    args = ap.parse_args()
    from follicle.synth import load_config

    w = simulate(load_config(args.config), persons=args.persons, seed=args.seed)
    truth = {(e["comparison"], e["outcome"]): e["true_hr"] for e in w.truth()["effects"]}
    covered = total = 0
    for target, comp in w.config.truth.comparisons:
        df = w.cohort_frame(target, comp)
        x = df[COVS].to_numpy(float)
        x[:, 0] = (x[:, 0] - 45) / 10
        if args.calendar:  # index period dummies (the JAKi era is a strong instrument for class)
            cuts = np.array([16071, 17683, 19156])  # 2014-01-01, 2018-06-01, 2022-06-13 as day numbers
            period = np.searchsorted(cuts, df.index_day.to_numpy(), side="right")
            x = np.c_[x, np.eye(4)[period][:, 1:]]
        ps = LogisticRegression(C=1e6, max_iter=1000).fit(x, df.treatment).decision_function(x)
        keep = match(ps, df.treatment.to_numpy(), 0.2 * ps.std())
        m = df[keep]
        xm = x[keep]
        tm = m.treatment.to_numpy() == 1
        smd = (xm[tm].mean(0) - xm[~tm].mean(0)) / np.sqrt((xm[tm].var(0) + xm[~tm].var(0)) / 2)
        print("SMD after matching:", ", ".join(f"{c} {v:+.3f}" for c, v in zip(COVS, smd)))
        print(f"\n{target} vs {comp}: {int(df.treatment.sum())} vs {int((1 - df.treatment).sum())}; "
              f"matched {int(m.treatment.sum())} pairs; mean follow-up "
              f"{m[m.treatment == 1].censor_day.sub(m[m.treatment == 1].index_day).mean():.0f} vs "
              f"{m[m.treatment == 0].censor_day.sub(m[m.treatment == 0].index_day).mean():.0f} days")
        for so in w.config.study_outcomes:
            d = m[~m[f"{so.name}_prior"]]
            time = d[f"{so.name}_time"].to_numpy(float)
            ev = d[f"{so.name}_event"].to_numpy()
            beta, se = cox_binary(time, ev, d.treatment.to_numpy())
            lo, hi = math.exp(beta - 1.96 * se), math.exp(beta + 1.96 * se)
            true = truth[(f"{target}_vs_{comp}", so.name)]
            ok = lo <= true <= hi
            covered += ok
            total += 1
            print(f"  {so.name:22s} events {int(ev[d.treatment == 1].sum()):5d}/{int(ev[d.treatment == 0].sum()):5d}"
                  f"  HR {math.exp(beta):.3f} ({lo:.3f}-{hi:.3f})  true {true:.3f}  {'ok' if ok else 'MISS'}")
    print(f"\ncoverage: {covered}/{total} = {covered / total:.0%}")


if __name__ == "__main__":
    main()
