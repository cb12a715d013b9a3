"""Bias and 95% CI coverage of PS-matched Cox estimates on a confounded simulation (>= 200 replicates).

World (self-contained; follicle.synth had not landed when this was written): four baseline covariates
(age and disease severity standardised, female, atopy) drive both treatment (logistic) and the event
hazard (exponential, proportional hazards, conditional log-HR of treatment ``beta``), with random
censoring and administrative end of follow-up. Estimator: logistic PS on the four covariates ->
1:1 greedy caliper matching (0.1 pooled SD of the logit PS, random order) -> Cox model of the event on
treatment in the matched sample with robust (sandwich) SEs clustered on the matched pair
(``follicle.survival.fit_outcome_model``, or lifelines ``CoxPHFitter(cluster_col=...)`` where
follicle.survival is not installed). Contrast: the unadjusted Cox on everyone.
``--world synth`` runs the same estimator on the synthetic AA world (``follicle.synth.simulate``),
one world per replicate, against ``World.truth()``.

Truth: matching estimates the *marginal* HR in the treated (ATT), which differs from the conditional
``beta`` (non-collapsibility). It is computed by simulation: both potential outcomes for 250,000
treated-population patients under the same censoring, one Cox fit on the stacked 500,000 rows.

Run: ``PYTHONPATH=src python bench/sim_coverage.py [--reps 200] [--n 5000]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

BETA = np.log(0.6)  # conditional log-HR of treatment
FOLLOW_UP = 2.0  # years of follow-up (administrative censoring)


def covariates(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "age": rng.normal(size=n),
        "severity": rng.normal(size=n),
        "female": (rng.random(n) < 0.6).astype(float),
        "atopy": (rng.random(n) < 0.35).astype(float),
    })


def treatment(rng: np.random.Generator, X: pd.DataFrame) -> np.ndarray:
    lp = -3.3 + 0.7 * X.age + 0.8 * X.severity + 0.4 * X.female + 0.5 * X.atopy
    return (rng.random(len(X)) < expit(lp)).astype(int)


def outcome(rng: np.random.Generator, X: pd.DataFrame, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event time ~ Exp(0.3 exp(lp)), censored by Exp(0.15) and at FOLLOW_UP."""
    lp = BETA * t + 0.6 * X.age.to_numpy() + 0.7 * X.severity.to_numpy() + 0.3 * X.female.to_numpy() \
        + 0.4 * X.atopy.to_numpy()
    ev = rng.exponential(1.0 / (0.3 * np.exp(lp)))
    cens = np.minimum(rng.exponential(1 / 0.15, len(X)), FOLLOW_UP)
    return np.minimum(ev, cens), (ev <= cens).astype(int)


def true_marginal_log_hr_att(seed: int = 99, n_treated: int = 250_000) -> float:
    """Marginal log-HR among the treated: both potential outcomes for the same people, one Cox fit."""
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(seed)
    X = covariates(rng, int(n_treated / 0.07))
    X = X[treatment(rng, X) == 1].iloc[:n_treated].reset_index(drop=True)
    t1, e1 = outcome(rng, X, np.ones(len(X), int))
    t0, e0 = outcome(rng, X, np.zeros(len(X), int))
    df = pd.DataFrame({"time": np.r_[t1, t0], "event": np.r_[e1, e0], "treated": np.r_[np.ones(len(X)), np.zeros(len(X))]})
    return float(CoxPHFitter().fit(df, "time", "event").params_["treated"])


@dataclass
class Replicate:
    matched: float
    matched_se: float
    unadjusted: float
    unadjusted_se: float
    pairs: int
    n_treated: int


def cox_log_hr(time_: np.ndarray, event: np.ndarray, treated: np.ndarray,
               pair: np.ndarray | None = None) -> tuple[float, float]:
    """Log-HR of treatment and its SE (robust, clustered on *pair* when given).

    Uses ``follicle.survival.fit_outcome_model`` (Efron ties, R ``coxph(..., cluster = pair)``)
    where it is installed, else lifelines ``CoxPHFitter(cluster_col=...)``.
    """
    try:
        from follicle.survival import fit_outcome_model
    except ImportError:
        fit_outcome_model = None
    if fit_outcome_model is not None:
        res = fit_outcome_model(time_, event, treated, ties="efron", robust_se=pair is not None, pair_id=pair)
        return float(res.summary["coef"].iloc[0]), float(res.summary["se"].iloc[0])
    from lifelines import CoxPHFitter

    df = pd.DataFrame({"time": time_, "event": event, "treated": treated})
    if pair is None:
        fit = CoxPHFitter().fit(df, "time", "event")
    else:
        fit = CoxPHFitter().fit(df.assign(pair=pair), "time", "event", cluster_col="pair")
    return float(fit.params_["treated"]), float(fit.standard_errors_["treated"])


def estimate(X: pd.DataFrame, t: np.ndarray, time_: np.ndarray, event: np.ndarray, seed: int,
             caliper: float = 0.1) -> Replicate:
    """PS -> 1:1 greedy caliper matching -> robust Cox on the matched set; and the crude Cox."""
    from follicle.causal import fit_propensity, match

    ps = fit_propensity(X, t).ps_
    res = match(ps, t, caliper=caliper, order="random", seed=seed)
    idx = res.index()
    m, m_se = cox_log_hr(time_[idx], event[idx], t[idx], res.set_ids()[idx])
    u, u_se = cox_log_hr(time_, event, t)
    return Replicate(matched=m, matched_se=m_se, unadjusted=u, unadjusted_se=u_se,
                     pairs=res.n_pairs, n_treated=res.n_treated)


def one_replicate(rng: np.random.Generator, n: int) -> Replicate:
    X = covariates(rng, n)
    t = treatment(rng, X)
    time_, event = outcome(rng, X, t)
    return estimate(X, t, time_, event, seed=int(rng.integers(2**31)))


def synth_replicates(reps: int, persons: int, seed: int, target: str, comparator: str,
                     outcome_name: str) -> tuple[float, list[Replicate]]:
    """Replicates on the synthetic AA world (follicle.synth): one world per replicate, truth from
    ``World.truth()`` of a first, larger world (the truth depends on the configuration only)."""
    from follicle.synth import simulate
    from follicle.synth.config import CONFOUNDERS

    big = simulate(persons=max(persons, 200_000), seed=seed)
    truth = next(e["true_log_hr"] for e in big.truth()["effects"]
                 if e["target"] == target and e["comparator"] == comparator and e["outcome"] == outcome_name)
    covs = ["age_index", "female", "severe", *[c for c in CONFOUNDERS if c != "psych_history"]]
    rows = []
    for r in range(reps):
        frame = simulate(persons=persons, seed=seed + 1 + r).cohort_frame(target, comparator)
        frame = frame[~frame[f"{outcome_name}_prior"]]
        t = frame["treatment"].to_numpy()
        rows.append(estimate(frame[covs].astype(float), t, frame[f"{outcome_name}_time"].to_numpy(float) + 1.0,
                             frame[f"{outcome_name}_event"].to_numpy(int), seed=r))
    return float(truth), rows


def summarise(truth: float, rows: list[Replicate]) -> dict[str, float]:
    reps = len(rows)
    est = np.array([r.matched for r in rows])
    se = np.array([r.matched_se for r in rows])
    un = np.array([r.unadjusted for r in rows])
    un_se = np.array([r.unadjusted_se for r in rows])
    z = 1.959963984540054
    return {
        "reps": reps, "true_marginal_log_hr_att": truth,
        "matched_mean": float(est.mean()), "matched_bias": float(est.mean() - truth),
        "matched_mc_se_of_bias": float(est.std(ddof=1) / np.sqrt(reps)),
        "matched_empirical_sd": float(est.std(ddof=1)), "matched_mean_robust_se": float(se.mean()),
        "matched_coverage": float(np.mean(np.abs(est - truth) <= z * se)),
        "unadjusted_mean": float(un.mean()), "unadjusted_bias": float(un.mean() - truth),
        "unadjusted_coverage": float(np.mean(np.abs(un - truth) <= z * un_se)),
        "mean_pairs": float(np.mean([r.pairs for r in rows])),
        "mean_share_treated_matched": float(np.mean([r.pairs / r.n_treated for r in rows])),
    }


def run(reps: int = 200, n: int = 15000, seed: int = 2024) -> dict[str, float]:
    """The self-contained world: *reps* replicates of *n* patients."""
    truth = true_marginal_log_hr_att()
    rng = np.random.default_rng(seed)
    out = summarise(truth, [one_replicate(rng, n) for _ in range(reps)])
    return {"n": n, "conditional_log_hr": BETA, **out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n", type=int, default=15000, help="patients per replicate (self-contained world)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--world", choices=["simple", "synth"], default="simple",
                    help="simple: the self-contained world above; synth: follicle.synth (one world per replicate)")
    ap.add_argument("--persons", type=int, default=200_000, help="persons per synthetic world")
    ap.add_argument("--comparison", default="jaki:immunosuppressant")
    ap.add_argument("--outcome", default="sleep_disorders")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.world == "simple":
        out = run(args.reps, args.n, args.seed)
    else:
        target, comparator = args.comparison.split(":")
        truth, rows = synth_replicates(args.reps, args.persons, args.seed, target, comparator, args.outcome)
        out = {"world": f"follicle.synth {args.persons:,} persons", "comparison": args.comparison,
               "outcome": args.outcome, **summarise(truth, rows)}
    for k, v in out.items():
        print(f"{k:28s} {v:.4f}" if isinstance(v, float) else f"{k:28s} {v}")
    print(f"elapsed {time.perf_counter() - t0:.0f} s")
    ok = abs(out["matched_bias"]) < 0.03 and 0.92 <= out["matched_coverage"] <= 0.98
    print("PASS" if ok else "FAIL", "(|bias| < 0.03 and coverage 92-98%)")


if __name__ == "__main__":
    main()
