"""Ground truth: every parameter, and the true marginal HR of each comparison x outcome.

The world is simulated with *conditional* hazard ratios (``class_hr`` given the covariates).
A propensity-matched study estimates a *marginal* HR in the matched (target-treated)
population, which differs from the conditional one because the HR is non-collapsible. The true
marginal HR is therefore computed by simulation: take the target population (persons whose first
systemic course is the target class with >= 2 prescriptions, no psychiatric or sleep history before
index, and per outcome no occurrence before index), draw both potential outcomes from index under
"initiate target" and "initiate comparator" (each with that class's own switching pattern), censor
both at the person's real observation end (optionally at a maximum follow-up), replicate the
population up to ``TruthConfig.target_persons`` rows per arm, and fit a Cox model with the arm as
the only covariate (Newton-Raphson, Breslow; times are continuous so there are no ties).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from follicle.synth._util import DAYS_PER_YEAR
from follicle.synth.config import CLASSES
from follicle.synth.outcomes import FAR, base_hazard, class_multipliers, piecewise_time
from follicle.synth.treatment import DrugTable, plan_courses

if TYPE_CHECKING:
    from follicle.synth.world import World

ESTIMAND = ("marginal hazard ratio, target vs comparator class initiation (intention to treat from the first "
            "prescription, switching as each class's usual pattern), in the population of target-class initiators "
            "with >= 2 prescriptions and no psychiatric/sleep history before index (ATT-like: what 1:1 propensity "
            "matching on the confounders estimates), follow-up from the day after index to observation end or death")
ESTIMAND_ATE = ("marginal hazard ratio, target vs comparator class initiation (intention to treat from the first "
                "prescription, switching as each class's usual pattern), in the population of target- and "
                "comparator-class initiators together, each with >= 2 prescriptions and no psychiatric/sleep history "
                "before index (ATE: what inverse probability of treatment weights for the ATE estimate), follow-up "
                "from the day after index to observation end or death")


def cox_binary(time: np.ndarray, event: np.ndarray, z: np.ndarray, iters: int = 25) -> tuple[float, float]:
    """Log-HR and its standard error for one binary covariate (Newton-Raphson, Breslow ties).

    References
    ----------
    Cox DR (1972). Regression models and life-tables. JRSS B 34:187-220.
    """
    order = np.argsort(-time, kind="stable")
    t, e, zz = time[order], event[order].astype(bool), z[order].astype(float)
    # Breslow: the risk set at a tied time holds every tied subject -> sums up to the last of each tie
    last = np.flatnonzero(np.r_[t[1:] != t[:-1], True])
    grp = np.searchsorted(last, np.flatnonzero(e))  # tie group of each event
    ze = zz[e]
    beta = 0.0
    info = 1.0
    for _ in range(iters):
        r = np.exp(beta * zz)
        s0 = np.cumsum(r)[last][grp]
        s1 = np.cumsum(r * zz)[last][grp]
        pbar = s1 / s0
        score = float((ze - pbar).sum())
        info = float((pbar * (1 - pbar)).sum())
        step = score / info
        beta += step
        if abs(step) < 1e-10:
            break
    return beta, 1.0 / math.sqrt(info)


def target_population(w: World, *classes: int) -> np.ndarray:
    """Initiators of any of *classes* (first systemic course) with >= 2 prescriptions and no
    neuropsychiatric history before index."""
    t = w._t
    sel = t["treated"] & np.isin(t["class1"], classes) & (t["n_rx1"] >= 2)
    for so in w.config.study_outcomes:
        if so.group == "neuropsychiatric":
            sel &= ~w.history_before(so.name, t["index_day"])
    return np.flatnonzero(sel)


def compute_truth(w: World, *, max_followup_days: int | None = None, estimand: str = "att") -> dict[str, Any]:
    """The truth of every comparison x outcome; *estimand* ``"att"`` (the target-class initiators,
    the default) or ``"ate"`` (target- and comparator-class initiators together)."""
    if estimand not in ("att", "ate"):
        raise ValueError(f"The 'estimand' parameter must be 'att' or 'ate'. Got {estimand!r} instead.")
    cfg = w.config
    rng = np.random.default_rng(np.random.SeedSequence([w.seed, 2024]))
    drugs = DrugTable(cfg)
    effects = []
    pops: dict[tuple[int, ...], dict] = {}
    for tname, cname in cfg.truth.comparisons:
        tk, ck = CLASSES.index(tname), CLASSES.index(cname)
        key = (tk,) if estimand == "att" else (tk, ck)
        if key not in pops:
            rows = target_population(w, *key)
            reps = max(1, math.ceil(cfg.truth.target_persons / max(len(rows), 1)))
            pops[key] = {"rows": rows, "reps": reps, "big": np.tile(rows, reps)}
        pop = pops[key]
        big = pop["big"]
        m = len(big)
        if len(pop["rows"]) == 0:
            continue
        t, p = w._t, w._p
        index = t["index_day"][big]
        age = (index - p["birth_day"][big]) / DAYS_PER_YEAR
        cov = {k: v[big] for k, v in w._cov.items()}
        follow = (p["obs_end"][big] - index).astype(float)
        if max_followup_days is not None:
            follow = np.minimum(follow, max_followup_days)
        plans = {}
        for arm in (tk, ck):
            plan = plan_courses(cfg, drugs, np.full(m, arm), index, age, cov, rng)
            s2 = np.where(plan["switch"], plan["start2"] - index, FAR).astype(float)
            plans[arm] = (s2, plan["class2"])
        # common random numbers: the same unit-exponential draw drives both potential outcomes
        draws = {pn.name: rng.exponential(1.0, m) for pn in cfg.processes}
        for so in cfg.study_outcomes:
            keep = ~w.history_before(so.name, t["index_day"])[big]
            times, events = [], []
            for arm in (tk, ck):
                s2, k2 = plans[arm]
                tt = np.full(m, np.inf)
                for pname in so.processes:
                    proc = cfg.process(pname)
                    h = base_hazard(proc, cov, m)
                    m1 = class_multipliers(proc, np.full(m, arm))
                    m2 = class_multipliers(proc, k2)
                    tt = np.minimum(tt, piecewise_time(h, 0.0, s2, 1.0, m1, m2, draws[pname]))
                ev = tt <= follow
                times.append(np.where(ev, tt, follow)[keep])
                events.append(ev[keep])
            z = np.r_[np.ones(keep.sum()), np.zeros(keep.sum())]
            same = all(len({cfg.process(pn).class_hr[c] for c in CLASSES}) == 1 for pn in so.processes)
            if same:  # no class effect at all: both potential outcomes coincide, HR = 1 exactly
                beta, se = 0.0, float("nan")
            else:
                beta, se = cox_binary(np.r_[times[0], times[1]], np.r_[events[0], events[1]], z)
            conditional = {pn: cfg.process(pn).class_hr[tname] / cfg.process(pn).class_hr[cname]
                           for pn in so.processes}
            effects.append({
                "comparison": f"{tname}_vs_{cname}", "target": tname, "comparator": cname, "outcome": so.name,
                "estimand": estimand.upper(),
                "group": so.group, "processes": so.processes,
                "true_hr": math.exp(beta), "true_log_hr": beta, "cox_se_log_hr_independent_draws": se,
                "conditional_hr": conditional if len(conditional) > 1 else next(iter(conditional.values())),
                "target_population": int(keep[: len(pop["rows"])].sum()), "replicates": pop["reps"],
                "events_target_arm": int(events[0].sum()), "events_comparator_arm": int(events[1].sum()),
            })
    return {
        "estimand": ESTIMAND if estimand == "att" else ESTIMAND_ATE,
        "method": ("counterfactual simulation: both potential outcomes drawn for the target population from the "
                   "generator's own hazards, Cox model with arm as the only covariate on the pooled data"),
        "max_followup_days": max_followup_days,
        "persons": summary_counts(w)["persons"], "seed": w.seed,
        "effects": effects,
        "summary": summary_counts(w),
        "parameters": cfg.model_dump(mode="json"),
    }


def summary_counts(w: World) -> dict[str, Any]:
    """Persons, AA, treated, first class, switchers, ... of the whole world (also when *w* is a part of it)."""
    if w.summary is not None:
        return w.summary
    t = w._t
    counts = {c: int((t["class1"] == k).sum()) for k, c in enumerate(CLASSES)}
    return {"persons": w.n, "aa": int(w._d["aa"].sum()), "treated": int(t["treated"].sum()),
            "first_class": counts, "switchers": int(t["switch"].sum()), "ivmp": int(t["ivmp"].sum()),
            "topical_ruxolitinib": int((t["topical_start"] >= 0).sum()),
            "deaths": int((w._p["death_day"] >= 0).sum())}
