"""Systemic treatment courses: who is treated, class and drug choice, prescriptions, switching.

Class choice is a multinomial logit in the confounders, AA severity and calendar time (JAK
inhibitors become likely after baricitinib's approval for AA, 13 June 2022); a drug is only
chosen once it is available and the patient is old enough. A course is 1 prescription (a
configurable share) or 2 + Poisson more, each of the drug's days' supply plus a small gap.
A share of persons starts a second course after the first ends: another drug of the same
class, or (``cross_class_share``) another class. Switching does not depend on outcomes.
"""

from __future__ import annotations

import numpy as np

from follicle.synth._util import DAYS_PER_YEAR, choose, day, expit, linear
from follicle.synth.config import CLASSES, WorldConfig
from follicle.synth.disease import covariates


class DrugTable:
    """The configured drugs as aligned arrays."""

    def __init__(self, cfg: WorldConfig) -> None:
        drugs = cfg.treatment.drugs
        self.names = [d.name for d in drugs]
        self.codes = [d.clinical_drug for d in drugs]
        self.klass = np.array([CLASSES.index(d.drug_class) for d in drugs])
        self.weight = np.array([d.weight for d in drugs])
        self.avail = np.array([day(d.available_from) for d in drugs])
        self.min_age = np.array([d.min_age for d in drugs], dtype=float)
        self.ds = np.array([d.days_supply for d in drugs])
        self.units = np.array([d.daily_units for d in drugs])

    def weights(self, when: np.ndarray, age: np.ndarray) -> np.ndarray:
        """(n, n_drugs) availability-masked weights at day *when* for age *age*."""
        ok = (when[:, None] >= self.avail[None, :]) & (age[:, None] >= self.min_age[None, :])
        return np.where(ok, self.weight[None, :], 0.0)


def _class_utilities(cfg: WorldConfig, when: np.ndarray, cov: dict, n: int) -> np.ndarray:
    tc = cfg.treatment
    util = np.zeros((n, len(CLASSES)))
    for c, name in enumerate(CLASSES):
        steps = sorted(tc.class_intercepts[name])
        days = np.array([day(d) for d, _ in steps])
        vals = np.array([v for _, v in steps])
        pos = np.clip(np.searchsorted(days, when, side="right") - 1, 0, len(vals) - 1)
        util[:, c] = vals[pos] + linear(tc.class_log_or.get(name, {}), cov, n)
    return util


def choose_class(cfg, drugs: DrugTable, when, age, cov, rng, exclude=None) -> np.ndarray:
    """Class index per person (-1 when nothing is available)."""
    n = len(when)
    util = _class_utilities(cfg, when, cov, n)
    dw = drugs.weights(when, age)
    avail = np.stack([dw[:, drugs.klass == c].sum(axis=1) > 0 for c in range(len(CLASSES))], axis=1)
    if exclude is not None:
        avail &= np.arange(len(CLASSES))[None, :] != exclude[:, None]
    w = np.where(avail, np.exp(util - util.max(axis=1, keepdims=True)), 0.0)
    return choose(rng, w)


def choose_drug(drugs: DrugTable, klass, when, age, rng, exclude=None) -> np.ndarray:
    w = drugs.weights(when, age) * (drugs.klass[None, :] == klass[:, None])
    if exclude is not None:
        w2 = np.where(np.arange(len(drugs.names))[None, :] == exclude[:, None], 0.0, w)
        w = np.where(w2.sum(axis=1, keepdims=True) > 0, w2, w)  # restart the same drug if it is the only one
    return choose(rng, w)


def _n_rx(cfg: WorldConfig, klass: np.ndarray, rng) -> np.ndarray:
    tc = cfg.treatment
    single = np.array([tc.single_prescription_share[c] for c in CLASSES])[klass]
    extra = np.array([tc.extra_prescriptions_mean[c] for c in CLASSES])[klass]
    return np.where(rng.random(len(klass)) < single, 1, 2 + rng.poisson(extra))


def plan_courses(cfg, drugs: DrugTable, klass, start, age, cov, rng) -> dict[str, np.ndarray]:
    """First course of class *klass* from day *start*, and the optional second course (untruncated)."""
    tc = cfg.treatment
    n = len(klass)
    drug1 = choose_drug(drugs, klass, start, age, rng)
    n1 = _n_rx(cfg, klass, rng)
    gap1 = rng.integers(0, tc.refill_gap_max_days + 1, n)  # days between one supply's end and the next
    end1 = start + (n1 - 1) * (drugs.ds[drug1] + gap1) + drugs.ds[drug1] - 1
    switch = rng.random(n) < tc.switch_share
    start2 = end1 + 1 + rng.integers(0, tc.switch_gap_max_days, n)
    cross = rng.random(n) < tc.cross_class_share
    other = choose_class(cfg, drugs, start2, age, cov, rng, exclude=klass)
    cross &= other >= 0
    klass2 = np.where(cross, other, klass)
    drug2 = choose_drug(drugs, klass2, start2, age + (start2 - start) / DAYS_PER_YEAR, rng,
                        exclude=np.where(cross, -1, drug1))
    switch &= drug2 >= 0
    n2 = _n_rx(cfg, klass2, rng)
    gap2 = rng.integers(0, tc.refill_gap_max_days + 1, n)
    return {"drug1": drug1, "n_rx1": n1, "gap1": gap1, "gap2": gap2, "end1": end1, "switch": switch, "start2": start2,
            "class2": np.where(switch, klass2, -1), "drug2": np.where(switch, drug2, -1), "n_rx2": n2}


def simulate_treatment(cfg: WorldConfig, p: dict, d: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    tc = cfg.treatment
    drugs = DrugTable(cfg)
    n = len(p["female"])
    age_dx = (d["aa_dx_day"] - p["birth_day"]) / DAYS_PER_YEAR
    cov_dx = covariates(p, (age_dx - 45) / 10, d["severe"])
    cand = d["aa"] & (rng.random(n) < expit(tc.treated_logit + linear(tc.treated_log_or, cov_dx, n)))
    index = d["aa_dx_day"] + rng.exponential(400, n).astype(np.int64)
    index = np.maximum(index, p["obs_start"] + tc.min_prior_observation_days + rng.integers(0, 60, n))
    treated = cand & (index <= p["obs_end"] - 14)
    age_idx = (index - p["birth_day"]) / DAYS_PER_YEAR
    cov = covariates(p, (age_idx - 45) / 10, d["severe"])
    klass = np.full(n, -1)
    idx = np.flatnonzero(treated)
    sub = {k: v[idx] for k, v in cov.items()}
    klass[idx] = choose_class(cfg, drugs, index[idx], age_idx[idx], sub, rng)
    treated &= klass >= 0
    idx = np.flatnonzero(treated)
    sub = {k: v[idx] for k, v in cov.items()}
    plan = plan_courses(cfg, drugs, klass[idx], index[idx], age_idx[idx], sub, rng)
    out = {"treated": treated, "index_day": np.where(treated, index, -1), "class1": np.where(treated, klass, -1),
           "age_index": np.where(treated, age_idx, np.nan)}
    for k, v in plan.items():
        full = np.full(n, False if v.dtype == bool else -1, dtype=v.dtype)
        full[idx] = v
        out[k] = full
    out["switch"] &= out["start2"] <= p["obs_end"]
    out["class2"] = np.where(out["switch"], out["class2"], -1)
    # IV methylprednisolone pulse before treatment (severe AA), recorded as a procedure
    ivmp = treated & d["severe"] & (rng.random(n) < tc.ivmp_share)
    ivmp_day = index - rng.integers(14, 180, n)
    ivmp &= ivmp_day >= np.maximum(p["obs_start"], d["aa_dx_day"])
    out["ivmp"] = ivmp
    out["ivmp_day"] = np.where(ivmp, ivmp_day, -1)
    # topical ruxolitinib (not systemic: no class, no effect on outcome hazards)
    from_day = day(tc.topical_ruxolitinib_from)
    top_start = np.maximum(d["aa_dx_day"], from_day) + rng.integers(0, 365, n)
    top = d["aa"] & (rng.random(n) < tc.topical_ruxolitinib_share) & (top_start <= p["obs_end"])
    out["topical_start"] = np.where(top, top_start, -1)
    out["topical_n_rx"] = np.where(top, 1 + rng.poisson(1.0, n), 0)
    out["drugs"] = drugs  # type: ignore[assignment]
    return out


def prescriptions(cfg: WorldConfig, p: dict, t: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Expand courses into drug_exposure rows (truncated at observation end)."""
    drugs: DrugTable = t["drugs"]
    parts = []
    for course, treated in ((1, t["treated"]), (2, t["switch"])):
        idx = np.flatnonzero(treated)
        drug = t[f"drug{course}"][idx]
        nrx = t[f"n_rx{course}"][idx]
        start = (t["index_day"] if course == 1 else t["start2"])[idx]
        gap = t[f"gap{course}"][idx]
        parts.append((idx, drug, nrx, start, np.full(len(idx), course), drugs.ds[drug], gap, False))
    idx = np.flatnonzero(t["topical_start"] >= 0)
    parts.append((idx, np.full(len(idx), -1), t["topical_n_rx"][idx], t["topical_start"][idx],
                  np.full(len(idx), 3), np.full(len(idx), 30), rng.integers(0, 60, len(idx)), True))
    rows: dict[str, list] = {k: [] for k in ("person", "drug", "start", "days_supply", "course", "k", "n", "topical")}
    for idx, drug, nrx, start, course, ds, gap, topical in parts:
        person = np.repeat(idx, nrx)
        k = np.arange(len(person)) - np.repeat(np.cumsum(nrx) - nrx, nrx)  # 0..n-1 within course
        ds_r = np.repeat(ds, nrx)
        s = np.repeat(start, nrx) + k * (ds_r + np.repeat(gap, nrx))
        rows["person"].append(person)
        rows["drug"].append(np.repeat(drug, nrx))
        rows["start"].append(s)
        rows["days_supply"].append(ds_r)
        rows["course"].append(np.repeat(course, nrx))
        rows["k"].append(k)
        rows["n"].append(np.repeat(nrx, nrx))
        rows["topical"].append(np.full(len(person), topical))
    out = {k: np.concatenate(v) for k, v in rows.items()}
    obs_end = p["obs_end"][out["person"]]
    keep = out["start"] <= obs_end
    out = {k: v[keep] for k, v in out.items()}
    end = np.minimum(out["start"] + out["days_supply"] - 1, p["obs_end"][out["person"]])
    out["days_supply"] = end - out["start"] + 1
    out["end"] = end
    return out
