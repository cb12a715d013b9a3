"""A small OMOP CDM with SALT measurements and a known response model, written with write_cdm.

Stands in for the synthetic world (follicle.synth) in tests: persons starting baricitinib with a
baseline SALT, AA subtype as ICD-10-CM source values, prior IV methylprednisolone, and a SALT at
9 months drawn from a logistic model with the coefficients in TRUTH.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from follicle.cdm.write import write_cdm
from follicle.vocab import local

BARICITINIB = 1510627  # RxNorm ingredient (clinical.md 1.3)
BARI_DRUG = 1510628  # a clinical-drug descendant (made up for the test's concept_ancestor row)
METHYLPRED = 1506270
IV_ROUTE = 4171047
AA = 141933
SUBTYPES = {"patchy": "L63.8", "ophiasis": "L63.2", "totalis": "L63.0", "universalis": "L63.1"}
# like the synthetic world's response model: ophiasis is the only subtype with an effect
TRUTH = {"(Intercept)": -0.6, "duration_le4": 0.9, "ivmp": 0.8, "baseline_salt_le95": 0.7, "female": 0.5,
         "aa_type[ophiasis]": -1.0}


def build(path, n=2000, seed=1, missing_landmark=0.0, extra_people=True):
    rng = np.random.default_rng(seed)
    pid = np.arange(1, n + 1)
    female = rng.integers(0, 2, n)
    subtype = rng.choice(list(SUBTYPES), n, p=[0.45, 0.15, 0.15, 0.25])
    years = np.floor(rng.uniform(0.2, 10, n) * 365.25) / 365.25  # whole days, as the CDM stores them
    ivmp = rng.binomial(1, 0.35, n)
    base = np.where(rng.random(n) < 0.3, 100.0, rng.uniform(50, 99, n).round(1))
    index = np.array([dt.date(2022, 7, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 400, n)])
    lp = (TRUTH["(Intercept)"] + TRUTH["duration_le4"] * (years <= 4) + TRUTH["ivmp"] * ivmp
          + TRUTH["baseline_salt_le95"] * (base <= 95) + TRUTH["female"] * female
          + TRUTH["aa_type[ophiasis]"] * (subtype == "ophiasis"))
    resp = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    land = np.where(resp == 1, rng.uniform(0, 20, n).round(1), np.maximum(20.1, base - rng.uniform(0, 30, n)).round(1))
    person = pd.DataFrame({"person_id": pid, "gender_concept_id": np.where(female == 1, 8532, 8507),
                           "year_of_birth": rng.integers(1960, 2000, n), "race_concept_id": 0, "ethnicity_concept_id": 0})
    cond = pd.DataFrame({"condition_occurrence_id": pid, "person_id": pid, "condition_concept_id": AA,
                         "condition_source_value": [SUBTYPES[s] for s in subtype],
                         "condition_start_date": [i - dt.timedelta(days=int(round(y * 365.25))) for i, y in zip(index, years)],
                         "condition_type_concept_id": 32817})
    ad = np.flatnonzero(rng.random(n) < 0.2)
    cond = pd.concat([cond, pd.DataFrame({
        "condition_occurrence_id": n + 1 + np.arange(len(ad)), "person_id": pid[ad], "condition_concept_id": 133834,
        "condition_source_value": "L20.9", "condition_start_date": index[ad] - dt.timedelta(days=3000),
        "condition_type_concept_id": 32817})], ignore_index=True)
    drugs = [pd.DataFrame({"person_id": pid, "drug_concept_id": BARI_DRUG, "drug_exposure_start_date": index,
                           "drug_exposure_end_date": index + dt.timedelta(days=90), "route_concept_id": 4132161}),
             pd.DataFrame({"person_id": pid, "drug_concept_id": BARI_DRUG,
                           "drug_exposure_start_date": index + dt.timedelta(days=90),
                           "drug_exposure_end_date": index + dt.timedelta(days=330), "route_concept_id": 4132161})]
    iv = ivmp == 1
    drugs.append(pd.DataFrame({"person_id": pid[iv], "drug_concept_id": METHYLPRED,
                               "drug_exposure_start_date": index[iv] - dt.timedelta(days=200),
                               "drug_exposure_end_date": index[iv] - dt.timedelta(days=197), "route_concept_id": IV_ROUTE}))
    if extra_people:  # ten persons with earlier oral methylprednisolone: not an IV pulse, and not new users
        drugs.append(pd.DataFrame({"person_id": pid[~iv][:10], "drug_concept_id": METHYLPRED,
                                   "drug_exposure_start_date": index[~iv][:10] - dt.timedelta(days=100),
                                   "drug_exposure_end_date": index[~iv][:10] - dt.timedelta(days=90),
                                   "route_concept_id": 4132161}))
    drug = pd.concat(drugs, ignore_index=True)
    drug["drug_exposure_id"] = np.arange(1, len(drug) + 1)
    drug["drug_type_concept_id"] = 32838
    lday = 274 + rng.integers(-30, 31, n)
    keep = rng.random(n) >= missing_landmark
    meas = [
        pd.DataFrame({"person_id": pid, "measurement_concept_id": local.SALT_TOTAL,
                      "measurement_date": [i - dt.timedelta(days=int(d)) for i, d in zip(index, rng.integers(0, 20, n))],
                      "value_as_number": base}),
        pd.DataFrame({"person_id": pid[keep], "measurement_concept_id": local.SALT_TOTAL,
                      "measurement_date": [i + dt.timedelta(days=int(d)) for i, d in zip(index[keep], lday[keep])],
                      "value_as_number": land[keep]}),
        pd.DataFrame({"person_id": pid, "measurement_concept_id": local.SALT_TOTAL,
                      "measurement_date": index + dt.timedelta(days=120), "value_as_number": (base + land) / 2}),
        pd.DataFrame({"person_id": pid, "measurement_concept_id": local.EYEBROW_CLINRO,
                      "measurement_date": index, "value_as_number": rng.integers(0, 4, n).astype(float)}),
        pd.DataFrame({"person_id": pid, "measurement_concept_id": local.EYELASH_CLINRO,
                      "measurement_date": index, "value_as_number": rng.integers(0, 4, n).astype(float)}),
    ]
    if extra_people:  # excluded: baseline SALT below 50, and no baseline at all (SALT only a year before)
        m = n + 1
        person = pd.concat([person, pd.DataFrame({"person_id": [m, m + 1], "gender_concept_id": 8532,
                                                  "year_of_birth": 1980, "race_concept_id": 0, "ethnicity_concept_id": 0})])
        extra = pd.DataFrame({"drug_exposure_id": [len(drug) + 1, len(drug) + 2], "person_id": [m, m + 1],
                              "drug_concept_id": BARICITINIB, "drug_exposure_start_date": dt.date(2023, 1, 1),
                              "drug_exposure_end_date": dt.date(2023, 3, 1), "drug_type_concept_id": 32838,
                              "route_concept_id": 4132161})
        drug = pd.concat([drug, extra], ignore_index=True)
        meas.append(pd.DataFrame({"person_id": [m, m + 1], "measurement_concept_id": local.SALT_TOTAL,
                                  "measurement_date": [dt.date(2022, 12, 20), dt.date(2021, 12, 1)],
                                  "value_as_number": [30.0, 90.0]}))
    meas = pd.concat(meas, ignore_index=True)
    meas["measurement_id"] = np.arange(1, len(meas) + 1)
    meas["measurement_type_concept_id"] = 32817
    ancestor = pd.DataFrame({"ancestor_concept_id": [BARICITINIB, BARICITINIB], "descendant_concept_id": [BARICITINIB, BARI_DRUG],
                             "min_levels_of_separation": [0, 1], "max_levels_of_separation": [0, 1]})
    obs = pd.DataFrame({"observation_period_id": person["person_id"].to_numpy(), "person_id": person["person_id"].to_numpy(),
                        "observation_period_start_date": dt.date(2010, 1, 1), "observation_period_end_date": dt.date(2025, 12, 31),
                        "period_type_concept_id": 32817})
    write_cdm({"person": person, "observation_period": obs, "condition_occurrence": cond, "drug_exposure": drug, "measurement": meas,
               "concept_ancestor": ancestor}, path)
    truth = pd.DataFrame({"person_id": pid, "responder": resp, "female": female, "ivmp": ivmp, "aa_type": subtype,
                          "duration_le4": (years <= 4).astype(int), "baseline_salt": base, "landmark_kept": keep})
    return truth
