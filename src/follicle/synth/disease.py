"""Alopecia areata: who has it, onset and diagnosis dates, subtype, ICD-10-CM code, baseline SALT."""

from __future__ import annotations

import numpy as np

from follicle.synth._util import DAYS_PER_YEAR, choose_fixed, expit, linear, logit
from follicle.synth.config import WorldConfig

SUBTYPES = ("patchy", "ophiasis", "totalis", "universalis")


def covariates(p: dict[str, np.ndarray], age10: np.ndarray, severe: np.ndarray | None = None) -> dict:
    """The covariate dictionary that coefficient names (config.COVARIATES) refer to."""
    cov = {name: p[name].astype(float) for name in
           ("atopic_dermatitis", "thyroid", "vitiligo", "obesity", "smoking", "diabetes", "hypertension",
            "prior_vte", "malignancy_history", "psych_history")}
    cov["female"] = p["female"].astype(float)
    cov["age10"] = age10
    cov["severe"] = np.zeros(len(age10)) if severe is None else severe.astype(float)
    return cov


def simulate_disease(cfg: WorldConfig, p: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    dc = cfg.disease
    n = len(p["female"])
    cov = covariates(p, (p["age_ref"] - 45) / 10)
    has = rng.random(n) < expit(logit(dc.aa_prevalence) + linear(dc.aa_log_or, cov, n))
    has &= (p["obs_end"] - p["obs_start"]) > 60
    span = np.maximum(p["obs_end"] - p["obs_start"] - 30, 1)
    dx = np.where(has, p["obs_start"] + (rng.random(n) * span).astype(np.int64), -1)
    long = rng.random(n) < dc.long_standing_share
    before = np.where(long, rng.exponential(dc.long_standing_mean_years * DAYS_PER_YEAR, n), rng.random(n) * 365)
    onset = np.where(has, np.maximum(dx - before.astype(np.int64), p["birth_day"]), -1)
    subtype = choose_fixed(rng, [dc.subtype_shares[s] for s in SUBTYPES], n)
    code = np.select([subtype == 1, subtype == 2, subtype == 3], ["L63.2", "L63.0", "L63.1"],
                     np.where(rng.random(n) < dc.patchy_l639_share, "L63.9", "L63.8"))
    salt = np.select(
        [subtype == 0, subtype == 1, subtype == 2],
        [rng.beta(1.1, 2.2, n) * 100, 25 + rng.beta(2, 2, n) * 55, 96 + rng.random(n) * 4],
        100.0)
    salt = np.round(salt, 1)
    return {"aa": has, "aa_dx_day": dx, "aa_onset_day": onset, "subtype": np.where(has, subtype, -1),
            "aa_code": np.where(has, code, ""), "salt0": np.where(has, salt, np.nan),
            "severe": has & (salt >= 50)}


def aa_iga(salt: np.ndarray) -> np.ndarray:
    """AA-IGA category from SALT (0 none, 1 1-20, 2 21-49, 3 50-94, 4 95-100; clinical.md 2.3)."""
    s = np.round(salt)
    return np.select([s <= 0, s <= 20, s <= 49, s <= 94], [0, 1, 2, 3], 4)
