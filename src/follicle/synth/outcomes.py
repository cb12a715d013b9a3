"""Outcome event processes: piecewise-constant hazards over observation, first events and repeats.

For process k and person i the hazard on day t is

    h_ik(t) = rate_k / (100 * 365.25) * exp(sum_j beta_kj x_ij) * class_hr_k[class_i(t)]

where class_i(t) is the class of the most recent systemic course started on or before t (1.0
before any systemic treatment). Covariates x are fixed at the anchor date (index date if treated,
else AA diagnosis, else mid-observation). Event times are drawn by inverting the cumulative hazard
over three segments (pre-treatment, first course class, second course class).
"""

from __future__ import annotations

import numpy as np

from follicle.synth._util import DAYS_PER_YEAR, choose_fixed, linear
from follicle.synth.config import CLASSES, OutcomeProcess, WorldConfig

FAR = 1e9  # "never" in days (finite so that products stay finite)


def class_multipliers(proc: OutcomeProcess, klass: np.ndarray) -> np.ndarray:
    """class_hr of each person's class index (-1 = untreated -> 1.0)."""
    table = np.array([proc.class_hr[c] for c in CLASSES] + [1.0])
    return table[np.where(klass >= 0, klass, len(CLASSES))]


def piecewise_time(h, b1, b2, m0, m1, m2, e):
    """Time at which cumulative hazard reaches *e*: hazard h*m0 on [0,b1), h*m1 on [b1,b2), h*m2 after."""
    a1 = h * m0 * b1
    a2 = a1 + h * m1 * (b2 - b1)
    return np.where(e < a1, e / (h * m0), np.where(e < a2, b1 + (e - a1) / (h * m1), b2 + (e - a2) / (h * m2)))


def base_hazard(proc: OutcomeProcess, cov: dict, n: int) -> np.ndarray:
    """Per-day hazard at reference class (untreated) for each person."""
    return proc.rate_per_100py / 100 / DAYS_PER_YEAR * np.exp(linear(proc.log_hr, cov, n))


def simulate_outcomes(cfg: WorldConfig, p: dict, t: dict, cov: dict, rng: np.random.Generator):
    """First event day per process (-1 if none) and the record rows (first + repeats)."""
    n = len(p["female"])
    origin = p["obs_start"]
    treated = t["treated"]
    b1 = np.where(treated, t["index_day"] - origin, FAR).astype(float)
    b2 = np.where(t["switch"], t["start2"] - origin, FAR).astype(float)
    first: dict[str, np.ndarray] = {}
    rec = {"person": [], "day": [], "proc": [], "code": []}
    # the event-time draws come first and from their own stream, so a process's event times do not
    # depend on how many events other processes had (worlds that differ in one parameter stay coupled)
    unit = rng.exponential(1.0, (len(cfg.processes), n))
    rng = np.random.default_rng(rng.integers(0, 2**63))
    for k, proc in enumerate(cfg.processes):
        h = base_hazard(proc, cov, n)
        m1 = class_multipliers(proc, t["class1"])
        m2 = class_multipliers(proc, t["class2"])
        tt = piecewise_time(h, b1, b2, 1.0, m1, m2, unit[k])
        dd = origin + np.floor(np.minimum(tt, FAR)).astype(np.int64)
        # no outcome record on a course's first day: the study's time at risk starts the day after
        dd = np.where((dd == t["index_day"]) | (t["switch"] & (dd == t["start2"])), dd + 1, dd)
        has = dd <= p["obs_end"]
        first[proc.name] = np.where(has, dd, -1)
        idx = np.flatnonzero(has)
        code = choose_fixed(rng, list(proc.codes.values()), len(idx))
        reps = rng.poisson(proc.repeat_mean, len(idx)) if proc.repeat_mean > 0 else np.zeros(len(idx), int)
        person = np.repeat(idx, reps + 1)
        pos = np.arange(len(person)) - np.repeat(np.cumsum(reps + 1) - (reps + 1), reps + 1)
        d0 = np.repeat(dd[idx], reps + 1)
        end = p["obs_end"][person]
        if proc.kind == "drug":  # refills roughly monthly
            later = d0 + pos * 30 + rng.integers(0, 7, len(person)) * (pos > 0)
        else:
            later = d0 + (rng.random(len(person)) * (end - d0 + 1)).astype(np.int64)
        dayr = np.where(pos == 0, d0, np.minimum(later, end))
        rec["person"].append(person)
        rec["day"].append(dayr)
        rec["proc"].append(np.full(len(person), k))
        rec["code"].append(np.repeat(code, reps + 1))
    records = {k: np.concatenate(v) for k, v in rec.items()}
    return first, records
