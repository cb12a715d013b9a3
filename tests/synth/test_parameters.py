"""The generator against its own parameters, within sampling error (4 standard errors)."""

from __future__ import annotations

import numpy as np

from follicle.synth._util import expit, linear, logit
from follicle.synth.config import CLASSES
from follicle.synth.disease import covariates
from follicle.synth.outcomes import FAR, base_hazard, class_multipliers

Z = 4.0


def close_binomial(observed_mean: float, expected_p: np.ndarray) -> None:
    n = len(expected_p)
    p = float(np.mean(expected_p))
    se = np.sqrt(np.sum(expected_p * (1 - expected_p))) / n
    assert abs(observed_mean - p) <= Z * se + 1e-12, (observed_mean, p, se)


def test_confounder_prevalence(world):
    p = world._p
    for spec in world.config.confounders:
        lp = logit(spec.prevalence) + spec.age10 * (p["age_ref"] - 45) / 10 + spec.female * p["female"]
        close_binomial(p[spec.name].mean(), expit(lp))


def test_aa_prevalence(world):
    p, d = world._p, world._d
    dc = world.config.disease
    cov = covariates(p, (p["age_ref"] - 45) / 10)
    lp = logit(dc.aa_prevalence) + linear(dc.aa_log_or, cov, world.n)
    eligible = (p["obs_end"] - p["obs_start"]) > 60
    close_binomial(d["aa"][eligible].mean(), expit(lp[eligible]))


def test_subtype_shares(world):
    d = world._d
    sub = d["subtype"][d["aa"]]
    shares = world.config.disease.subtype_shares
    for k, name in enumerate(("patchy", "ophiasis", "totalis", "universalis")):
        close_binomial((sub == k).mean(), np.full(len(sub), shares[name]))


def test_single_prescription_share(world):
    t = world._t
    for k, name in enumerate(CLASSES):
        sel = t["class1"] == k
        share = world.config.treatment.single_prescription_share[name]
        close_binomial((t["n_rx1"][sel] == 1).mean(), np.full(sel.sum(), share))


def test_prescription_rows_follow_courses(world):
    """Courses that fit in observation have exactly n_rx1 drug_exposure rows."""
    t, p, rx = world._t, world._p, world._rx
    fits = t["treated"] & (t["end1"] <= p["obs_end"])
    counts = np.bincount(rx["person"][rx["course"] == 1], minlength=world.n)
    assert np.array_equal(counts[fits], t["n_rx1"][fits])
    assert (rx["days_supply"] >= 1).all() and (rx["end"] >= rx["start"]).all()


def test_crude_incidence_matches_cumulative_hazard(world):
    """Observed first events = sum of cumulative hazards up to event or censoring (martingale)."""
    p, t = world._p, world._t
    origin = p["obs_start"]
    b1 = np.where(t["treated"], t["index_day"] - origin, FAR).astype(float)
    b2 = np.where(t["switch"], t["start2"] - origin, FAR).astype(float)
    for proc in world.config.processes:
        first = world._first[proc.name]
        stop = np.where(first >= 0, first - origin + 0.5, p["obs_end"] - origin + 1.0).astype(float)
        h = base_hazard(proc, world._cov, world.n)
        m1, m2 = class_multipliers(proc, t["class1"]), class_multipliers(proc, t["class2"])
        cum = h * (np.minimum(stop, b1) + m1 * np.clip(np.minimum(stop, b2) - b1, 0, None)
                   + m2 * np.clip(stop - b2, 0, None))
        observed = (first >= 0).sum()
        expected = cum.sum()
        assert abs(observed - expected) <= Z * np.sqrt(expected) + 2, (proc.name, observed, expected)


def test_response_rate_matches_logistic_model(world):
    t, r = world._t, world._resp
    tr = t["treated"]
    close_binomial(r["responder"][tr].mean(), r["response_prob"][tr])
    # ... and, within a class, the known coefficients: JAK inhibitors respond more than corticosteroids
    assert r["responder"][t["class1"] == 0].mean() > r["responder"][t["class1"] == 2].mean()


def test_week36_salt_agrees_with_response(world):
    """On-treatment SALT at week 36 is <= 20 exactly for responders (baseline SALT > 20)."""
    t, d, r, rows = world._t, world._d, world._resp, world._salt_rows
    from follicle.vocab.local import SALT_TOTAL

    sel = rows["concept_id"] == SALT_TOTAL
    person, day, value = rows["person"][sel], rows["day"][sel], rows["value"][sel]
    wk36 = np.abs(day - t["index_day"][person] - 252) <= 7
    on = (t["end1"][person] > day) & t["treated"][person] & (d["salt0"][person] > 20)
    keep = wk36 & on
    assert keep.sum() > 200
    assert np.array_equal(value[keep] <= 20, r["responder"][person[keep]])


def test_salt_total_is_weighted_sum_of_regions(world):
    from follicle.synth.salt import REGION_IDS, WEIGHTS
    from follicle.vocab.local import SALT_TOTAL

    rows = world._salt_rows
    total = rows["value"][rows["concept_id"] == SALT_TOTAL]
    regions = np.stack([rows["value"][rows["concept_id"] == c] for c in REGION_IDS], axis=1)
    assert np.allclose(total, regions @ WEIGHTS, atol=0.051)  # total is rounded to 0.1
    assert (regions >= 0).all() and (regions <= 100).all()


def test_jaki_mostly_after_approval(world):
    from datetime import date

    from follicle.synth._util import day

    t = world._t
    jaki = t["class1"] == 0
    assert (t["index_day"][jaki] >= day(date(2022, 6, 13))).mean() > 0.5
    cs = t["class1"] == 2
    assert (t["index_day"][cs] >= day(date(2022, 6, 13))).mean() < 0.3
