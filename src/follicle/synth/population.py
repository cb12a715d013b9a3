"""Persons, observation periods, deaths and baseline confounders."""

from __future__ import annotations

import numpy as np

from follicle.synth._util import DAYS_PER_YEAR, choose_fixed, day, expit, logit
from follicle.synth.config import WorldConfig

REF_DAY = day(__import__("datetime").date(2015, 7, 1))  # reference date for the age distribution
RACES = ("white", "black", "asian", "unknown")


def simulate_population(cfg: WorldConfig, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Person-level arrays: demographics, observation window, death, confounders (with record days)."""
    pc = cfg.population
    female = rng.random(n) < pc.female_share
    shape = (pc.age_mean / pc.age_sd) ** 2
    age_ref = np.clip(rng.gamma(shape, pc.age_mean / shape, n), 0.5, 95.0)
    birth = (REF_DAY - age_ref * DAYS_PER_YEAR).astype(np.int64)
    race = choose_fixed(rng, [pc.race_shares.get(r, 0.0) for r in RACES], n)
    hispanic = rng.random(n) < pc.hispanic_share

    w0, w1 = day(pc.window_start), day(pc.window_end)
    start = w0 + (rng.random(n) * (w1 - w0 - pc.min_observation_days)).astype(np.int64)
    start = np.maximum(start, birth)
    length = pc.min_observation_days + rng.exponential(pc.mean_observation_years * DAYS_PER_YEAR, n)
    end = np.minimum(start + length.astype(np.int64), w1)
    # persons born too late for the minimum window: shift start back into the window
    short = end - start < pc.min_observation_days
    start = np.where(short, np.maximum(birth, end - pc.min_observation_days), start)

    age_start = (start - birth) / DAYS_PER_YEAR
    rate = pc.mortality_per_100py_at_45 / 100 / DAYS_PER_YEAR * np.exp(
        pc.mortality_log_hr_per_10y * (age_start - 45) / 10)
    t_death = rng.exponential(1.0, n) / rate
    dies = start + t_death < end
    death = np.where(dies, start + np.floor(t_death).astype(np.int64), -1)
    end = np.where(dies, death, end)

    out: dict[str, np.ndarray] = {
        "female": female, "age_ref": age_ref, "birth_day": birth, "race": race, "hispanic": hispanic,
        "obs_start": start, "obs_end": end, "death_day": death,
    }
    age10_ref = (age_ref - 45) / 10
    span = np.minimum(end - start, 365)
    for spec in cfg.confounders:
        lp = logit(spec.prevalence) + spec.age10 * age10_ref + spec.female * female
        has = rng.random(n) < expit(lp)
        out[spec.name] = has
        out[f"{spec.name}_day"] = np.where(has, start + (rng.random(n) * span).astype(np.int64), -1)
        out[f"{spec.name}_code"] = choose_fixed(rng, list(spec.codes.values()), n)
    bmi_obese = np.clip(rng.normal(34.5, 4.0, n), 30.0, 60.0)
    bmi_other = np.clip(rng.normal(25.0, 2.8, n), 16.0, 29.9)
    out["bmi"] = np.round(np.where(out["obesity"], bmi_obese, bmi_other), 1)
    return out
