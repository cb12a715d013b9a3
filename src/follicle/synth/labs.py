"""Laboratory values with LOINC concepts and UCUM units: baseline and on-treatment follow-up.

Panels: at AA diagnosis for untreated persons; for treated persons within 30 days before the
index date, then at 6 weeks and 3, 6, 9 and 12 months. Each person has a stable level per
analyte (normal on the log scale) plus visit noise; on treatment, JAK inhibitors lower
lymphocytes (-15 %) and raise LDL (+12 %), immunosuppressants raise ALT (+20 %) and lower
neutrophils (-10 %). eGFR falls with age.
"""

from __future__ import annotations

import numpy as np

from follicle.synth._util import DAYS_PER_YEAR

# name: (concept_id, unit_concept_id, unit source value, median, log-sd between persons, log-sd visit)
LABS = {
    "egfr": (40764999, 720870, "mL/min/{1.73_m2}", 100.0, 0.12, 0.05),
    "lymphocytes": (3004327, 8848, "10*3/uL", 1.9, 0.30, 0.10),
    "neutrophils": (3013650, 8848, "10*3/uL", 4.0, 0.28, 0.12),
    "hemoglobin": (3000963, 8713, "g/dL", 14.0, 0.07, 0.03),
    "platelets": (3024929, 8848, "10*3/uL", 250.0, 0.22, 0.07),
    "alt": (3006923, 8645, "U/L", 22.0, 0.35, 0.15),
    "ldl": (3009966, 8840, "mg/dL", 110.0, 0.25, 0.07),
}
# on-treatment multiplier by class index (jaki, immunosuppressant, corticosteroid)
EFFECTS = {"lymphocytes": (0.85, 0.95, 1.0), "ldl": (1.12, 1.0, 1.03), "alt": (1.05, 1.2, 1.0),
           "neutrophils": (0.95, 0.9, 1.1)}
FOLLOWUP_DAYS = (42, 91, 182, 273, 365)


def simulate_labs(p: dict, d: dict, t: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(p["female"])
    treated = t["treated"]
    persons = [np.flatnonzero(d["aa"] & ~treated)]
    days = [d["aa_dx_day"][persons[0]]]
    on = [np.zeros(len(persons[0]), bool)]
    ti = np.flatnonzero(treated)
    persons.append(ti)
    days.append(np.maximum(t["index_day"][ti] - rng.integers(1, 31, len(ti)), p["obs_start"][ti]))
    on.append(np.zeros(len(ti), bool))
    for f in FOLLOWUP_DAYS:
        persons.append(ti)
        days.append(t["index_day"][ti] + f + rng.integers(-10, 11, len(ti)))
        on.append(np.ones(len(ti), bool))
    person, dday, ontr = np.concatenate(persons), np.concatenate(days), np.concatenate(on)
    keep = dday <= p["obs_end"][person]
    person, dday, ontr = person[keep], dday[keep], ontr[keep]
    age = (dday - p["birth_day"][person]) / DAYS_PER_YEAR
    female = p["female"][person]
    klass = np.maximum(t["class1"][person], 0)
    out = {"person": [], "day": [], "concept_id": [], "value": [], "unit_concept_id": [], "unit": []}
    m = len(person)
    for name, (cid, unit_id, unit, median, sd_p, sd_v) in LABS.items():
        level = np.log(median) + sd_p * rng.standard_normal(n)
        v = level[person] + sd_v * rng.standard_normal(m)
        if name == "egfr":
            v += np.log(np.clip(1 - 0.008 * (age - 40), 0.3, 1.3))
        if name == "hemoglobin":
            v += np.where(female, -0.07, 0.04)
        if name in EFFECTS:
            v += np.where(ontr, np.log(np.array(EFFECTS[name])[klass]), 0.0)
        val = np.exp(v)
        out["person"].append(person)
        out["day"].append(dday)
        out["concept_id"].append(np.full(m, cid))
        out["value"].append(np.round(val, 2 if median < 20 else 0))
        out["unit_concept_id"].append(np.full(m, unit_id))
        out["unit"].append(np.full(m, list(LABS).index(name), dtype=np.int32))
    return {k: np.concatenate(v) for k, v in out.items()}
