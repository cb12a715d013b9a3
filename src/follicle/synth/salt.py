"""SALT scalp assessments, eyebrow/eyelash ClinRO and AA-IGA as measurement rows.

Response (SALT <= 20 by week 36 on systemic treatment) is logistic in disease duration <= 4
years, prior IV methylprednisolone pulse, baseline SALT <= 95, female sex and ophiasis, with a
class-specific intercept (``ResponseConfig``). Responders' SALT falls exponentially (time constant
60 days) to a final value below 16; non-responders' to 75-100 % of baseline (and at least 22). After
the last course ends, a share relapses: SALT climbs back towards baseline (time constant 120 days).
Regional values (top 40 %, back 24 %, sides 18 % each; Olsen 2004) are drawn around the total and
the recorded total is their weighted sum.
"""

from __future__ import annotations

import numpy as np

from follicle.synth._util import DAYS_PER_YEAR, expit
from follicle.synth.config import CLASSES, WorldConfig
from follicle.synth.disease import aa_iga
from follicle.vocab import local

WEIGHTS = np.array([0.40, 0.24, 0.18, 0.18])  # top, back, left, right
REGION_IDS = [local.SALT_TOP, local.SALT_BACK, local.SALT_LEFT, local.SALT_RIGHT]


def response_probability(cfg: WorldConfig, klass, duration_years, ivmp, salt0, female, ophiasis) -> np.ndarray:
    rc = cfg.response
    b0 = np.array([rc.intercept[c] for c in CLASSES])[np.maximum(klass, 0)]
    lp = (b0 + rc.duration_le_4y * (duration_years <= 4) + rc.ivmp * ivmp + rc.baseline_salt_le_95 * (salt0 <= 95)
          + rc.female * female + rc.ophiasis * ophiasis)
    return expit(lp)


def simulate_salt(cfg: WorldConfig, p: dict, d: dict, t: dict, rng: np.random.Generator):
    """Person-level response arrays and measurement rows (person, day, concept_id, value)."""
    rc = cfg.response
    n = len(p["female"])
    treated = t["treated"]
    salt0 = np.nan_to_num(d["salt0"])
    dur = (t["index_day"] - d["aa_onset_day"]) / DAYS_PER_YEAR
    prob = response_probability(cfg, t["class1"], dur, t["ivmp"], salt0, p["female"], d["subtype"] == 1)
    responder = treated & (rng.random(n) < prob)
    final = np.where(responder, np.minimum(salt0, rng.random(n) * 16.0),
                     np.where(salt0 > 20, np.maximum(salt0 * (0.75 + 0.25 * rng.random(n)), 22.0), salt0))
    stop = np.where(t["switch"], -1, t["end1"])  # last course end (second course ends are not tracked)
    relapse_p = np.array([rc.relapse_share[c] for c in CLASSES])[np.maximum(t["class1"], 0)]
    relapse = treated & (rng.random(n) < relapse_p)

    # assessment schedule: diagnosis (untreated AA), baseline at index, follow-up weeks, post-stop weeks
    persons, days = [np.flatnonzero(d["aa"] & ~treated)], [d["aa_dx_day"][d["aa"] & ~treated]]
    ti = np.flatnonzero(treated)
    persons.append(ti)
    days.append(np.maximum(t["index_day"][ti] - rng.integers(0, 14, len(ti)), p["obs_start"][ti]))
    for w in rc.followup_weeks:
        persons.append(ti)
        days.append(t["index_day"][ti] + 7 * w + rng.integers(-7, 8, len(ti)))
    st = np.flatnonzero(treated & (stop >= 0))
    for w in rc.post_stop_weeks:
        persons.append(st)
        days.append(stop[st] + 7 * w + rng.integers(-7, 8, len(st)))
    person = np.concatenate(persons)
    dday = np.concatenate(days)
    keep = (dday <= p["obs_end"][person]) & (dday >= p["obs_start"][person])
    person, dday = person[keep], dday[keep]
    order = np.lexsort((dday, person))
    person, dday = person[order], dday[order]

    base = salt0[person]
    tr = treated[person]
    since = np.maximum(dday - t["index_day"][person], 0).astype(float)
    on = base + (final[person] - base) * (1 - np.exp(-since / 60.0))
    stopped = tr & (stop[person] >= 0) & (dday > stop[person])
    at_stop = base + (final[person] - base) * (1 - np.exp(-np.maximum(stop[person] - t["index_day"][person], 0) / 60.0))
    back = at_stop + (base - at_stop) * (1 - np.exp(-np.maximum(dday - stop[person], 0) / 120.0))
    total = np.where(~tr, base, np.where(stopped & relapse[person], back, np.where(stopped, at_stop, on)))
    total = np.clip(total + rng.normal(0, 0.5, len(total)) * (total > 0) * (total < 100), 0, 100)

    # regional pattern: ophiasis spares the top; patchy varies; totalis/universalis uniform
    sub = d["subtype"][person]
    pattern = np.exp(0.35 * rng.standard_normal((len(total), 4)))
    pattern = np.where((sub == 1)[:, None], np.array([0.3, 1.7, 1.5, 1.5])[None, :], pattern)
    pattern = np.where((sub >= 2)[:, None], 1.0, pattern)
    pattern /= (pattern * WEIGHTS).sum(axis=1, keepdims=True)
    regions = np.round(np.clip(total[:, None] * pattern, 0, 100), 1)
    total = np.round((regions * WEIGHTS).sum(axis=1), 1)

    brow0 = np.where(d["subtype"] == 3, 3, np.clip(np.round(salt0 / 100 * 3 + rng.normal(0, 0.5, n)), 0, 3))
    lash0 = np.where(d["subtype"] == 3, 3, np.clip(np.round(salt0 / 100 * 2.5 + rng.normal(0, 0.5, n)), 0, 3))
    ratio = np.where(base > 0, total / np.maximum(base, 1e-9), 1.0)
    brow = np.clip(np.round(brow0[person] * np.minimum(ratio, 1.5)), 0, 3)
    lash = np.clip(np.round(lash0[person] * np.minimum(ratio, 1.5)), 0, 3)

    m = len(person)
    concept = np.concatenate([np.full(m, local.SALT_TOTAL), *[np.full(m, c) for c in REGION_IDS],
                              np.full(m, local.EYEBROW_CLINRO), np.full(m, local.EYELASH_CLINRO),
                              np.full(m, local.AA_IGA)])
    rows = {
        "person": np.tile(person, 8), "day": np.tile(dday, 8), "concept_id": concept,
        "value": np.concatenate([total, *regions.T, brow, lash, aa_iga(total).astype(float)]),
    }
    people = {"response_prob": np.where(treated, prob, np.nan), "responder": responder, "relapse": relapse,
              "disease_years_at_index": np.where(treated, dur, np.nan)}
    return people, rows
