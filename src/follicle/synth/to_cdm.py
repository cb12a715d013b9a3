"""Turn a simulated world into OMOP CDM v5.4 tables (pyarrow), vocabulary subset included.

Every clinical record gets a visit (one per person, day and setting); ICD-10-CM codes go to
``condition_source_value`` / ``condition_source_concept_id`` and their ``Maps to`` standard
concept to ``condition_concept_id``; drugs are written as clinical-drug concepts whose
ingredient (and, for antidepressants, ATC N06A) is reachable through ``concept_ancestor``;
oral and topical ruxolitinib differ in concept, dose form and ``route_concept_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from follicle.synth._util import EPOCH
from follicle.synth.population import RACES
from follicle.synth.world import cdm_rng
from follicle.vocab import bundled

if TYPE_CHECKING:
    from follicle.synth.world import World

EHR, EHR_RX, LAB = 32817, 32838, 32856
OUTPATIENT, INPATIENT = 9202, 9201
ORAL, TOPICAL = 4132161, 4263689
RACE_IDS = {"white": 8527, "black": 8516, "asian": 8515, "unknown": 0}
SMOKING_STATUS = 43054909
BMI = 3038553
IVMP = 2000500001


def _date(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), pa.date32())


def _i64(x) -> pa.Array:
    """An integer column; CDM integer columns are 32-bit, so int32 (half the memory of int64)."""
    return pa.array(np.asarray(x, dtype=np.int32), pa.int32())


def _lookup(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique values, index of each value): np.unique for arrays with few distinct values."""
    uniq = np.unique(values[:: max(1, len(values) // 100_000)])
    pos = np.searchsorted(uniq, values)
    pos = np.minimum(pos, len(uniq) - 1)
    missing = uniq[pos] != values
    if missing.any():  # the sample missed a rare value: fall back to the exact method
        return np.unique(values, return_inverse=True)
    return uniq, pos


def _dict(indices: np.ndarray, values: list[str] | np.ndarray) -> pa.Array:
    """A dictionary-encoded string column (fast to build and to load)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(indices, dtype=np.int32)),
                                          pa.array([str(v) for v in values], pa.string()))


class _Icd:
    """All ICD-10-CM codes of the bundled vocabulary as aligned arrays (index = code position)."""

    def __init__(self) -> None:
        rows = [r for r in bundled._concept_rows() if r["vocabulary_id"] == "ICD10CM"]
        self.codes = [str(r["concept_code"]) for r in rows]
        self.pos = {c: i for i, c in enumerate(self.codes)}
        self.src = np.array([r["concept_id"] for r in rows])
        mapping = bundled.maps_to()
        self.std = np.array([mapping[r["concept_id"]] for r in rows])
        self.valid = np.array([(date.fromisoformat(str(r["valid_start_date"])) - EPOCH).days for r in rows])

    def index(self, codes) -> np.ndarray:
        return np.array([self.pos[c] for c in codes])


def _conditions(w: World) -> dict[str, np.ndarray]:
    """All condition records as (person, day, ICD code index, inpatient) plus concept ids."""
    p, d, t = w._p, w._d, w._t
    icd = _Icd()
    persons, days, codes, inpt = [], [], [], []

    def add(person, dd, code, inpatient=False):
        persons.append(person)
        days.append(dd)
        codes.append(code)
        inpt.append(np.full(len(person), inpatient))

    aa = np.flatnonzero(d["aa"])
    aa_idx = icd.index(["L63.9", "L63.8", "L63.2", "L63.0", "L63.1"])
    aa_code = np.select([d["aa_code"] == c for c in ("L63.9", "L63.8", "L63.2", "L63.0")], aa_idx[:4], aa_idx[4])
    add(aa, d["aa_dx_day"][aa], aa_code[aa])
    tr = np.flatnonzero(t["treated"])
    add(tr, t["index_day"][tr], aa_code[tr])  # AA coded again at the treatment visit
    rng = cdm_rng(w.seed, w.block, 7)
    for spec in w.config.confounders:
        has = np.flatnonzero(p[spec.name])
        code_list = icd.index(list(spec.codes))
        add(has, p[f"{spec.name}_day"][has], code_list[p[f"{spec.name}_code"][has]])
        again = has[t["treated"][has] & (spec.name != "psych_history")]
        dd = np.maximum(t["index_day"][again] - rng.integers(1, 61, len(again)), p["obs_start"][again])
        add(again, np.maximum(dd, p[f"{spec.name}_day"][again]), code_list[p[f"{spec.name}_code"][again]])
    rec = w._records
    for k, proc in enumerate(w.config.processes):
        if proc.kind != "condition":
            continue
        sel = rec["proc"] == k
        code_list = icd.index(list(proc.codes))
        add(rec["person"][sel], rec["day"][sel], code_list[rec["code"][sel]], proc.inpatient)
    out = {"person": np.concatenate(persons), "day": np.concatenate(days),
           "code": np.concatenate(codes), "inpatient": np.concatenate(inpt)}
    # a code not yet valid on the record day (F32.A before Oct 2021) is written as F32.9
    early = out["day"] < icd.valid[out["code"]]
    fallback = np.arange(len(icd.codes))
    fallback[icd.pos["F32.A"]] = icd.pos["F32.9"]
    out["code"] = np.where(early, fallback[out["code"]], out["code"])
    out["source_concept_id"] = icd.src[out["code"]]
    out["concept_id"] = icd.std[out["code"]]
    out["code_values"] = icd.codes
    return out


def _drugs(w: World) -> dict[str, np.ndarray]:
    t, rx = w._t, w._rx
    drugs = t["drugs"]
    cd_ids = np.array([bundled.concept_id("RxNorm", c) for c in drugs.codes] +
                      [bundled.concept_id("RxNorm", "FOLLICLE-CD-RUXCREAM")])
    units = np.append(drugs.units, 1.0)
    drug = np.where(rx["topical"], len(drugs.codes), rx["drug"])
    out = {"person": rx["person"], "start": rx["start"], "end": rx["end"], "days_supply": rx["days_supply"],
           "concept_id": cd_ids[drug], "route": np.where(rx["topical"], TOPICAL, ORAL),
           "refills": rx["n"] - rx["k"] - 1,
           "quantity": np.where(rx["topical"], 60.0, rx["days_supply"] * units[drug])}
    rec = w._records
    parts = [out]
    for k, proc in enumerate(w.config.processes):
        if proc.kind != "drug":
            continue
        sel = rec["proc"] == k
        ids = np.array([bundled.concept_id("RxNorm", c) for c in proc.codes])
        person, start = rec["person"][sel], rec["day"][sel]
        end = np.minimum(start + 29, w._p["obs_end"][person])
        parts.append({"person": person, "start": start, "end": end, "days_supply": end - start + 1,
                      "concept_id": ids[rec["code"][sel]], "route": np.full(len(person), ORAL),
                      "refills": np.zeros(len(person), int), "quantity": (end - start + 1).astype(float)})
    return {k: np.concatenate([pt[k] for pt in parts]) for k in out}


@dataclass
class CdmIds:
    """The last id used so far per event table: blocks written one after another continue from here."""

    visit: int = 0
    condition: int = 0
    drug: int = 0
    measurement: int = 0
    procedure: int = 0
    observation: int = 0


def _ids(ids: CdmIds, key: str, m: int) -> pa.Array:
    """Ids 1..m after the last one used for *key*; advance the counter."""
    first = getattr(ids, key)
    setattr(ids, key, first + m)
    return _i64(np.arange(first + 1, first + m + 1))


def build_tables(w: World, ids: CdmIds) -> dict[str, pa.Table]:
    """The clinical tables of one block *w*, its event ids continuing from *ids* (advanced in place)."""
    p, t = w._p, w._t
    n = len(p["female"])
    pid = w.offset + 1  # person_id of row 0
    cond = _conditions(w)
    drug = _drugs(w)
    salt, labs = w._salt_rows, w._lab_rows
    rng = cdm_rng(w.seed, w.block, 11)
    bmi_day = p["obs_start"] + (rng.random(n) * np.minimum(p["obs_end"] - p["obs_start"], 365)).astype(np.int64)
    ivmp = np.flatnonzero(t["ivmp"])
    smk = np.flatnonzero(p["smoking"])

    # visits: one per (person, day, setting) over every record
    vp = np.concatenate([cond["person"], drug["person"], salt["person"], labs["person"], np.arange(n), ivmp, smk])
    vd = np.concatenate([cond["day"], drug["start"], salt["day"], labs["day"], bmi_day, t["ivmp_day"][ivmp],
                         p["smoking_day"][smk]])
    vi = np.concatenate([cond["inpatient"], np.zeros(len(vp) - len(cond["person"]), bool)])
    key = (vp.astype(np.int64) * 65536 + vd.astype(np.int64)) * 2 + vi
    del vp, vd, vi
    ukey, inv = np.unique(key, return_inverse=True)
    del key
    visit_id = (inv + 1 + ids.visit).astype(np.int32)
    del inv
    v_inp = (ukey % 2).astype(bool)
    v_day = (ukey // 2) % 65536
    v_person = ukey // 2 // 65536
    los = rng.integers(1, 8, len(ukey))
    v_end = np.where(v_inp, np.minimum(v_day + los, p["obs_end"][v_person]), v_day)
    off = np.cumsum([0, len(cond["person"]), len(drug["person"]), len(salt["person"]), len(labs["person"]), n,
                     len(ivmp)])
    seg = lambda i: visit_id[off[i]:off[i + 1]]

    gender = np.where(p["female"], 8532, 8507)
    birth = p["birth_day"]
    bd = birth.astype("datetime64[D]")
    year = bd.astype("datetime64[Y]").astype(int) + 1970
    month = bd.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (bd - bd.astype("datetime64[M]")).astype(int) + 1
    tables: dict[str, pa.Table] = {}
    tables["person"] = pa.table({
        "person_id": _i64(np.arange(pid, pid + n)), "gender_concept_id": _i64(gender),
        "year_of_birth": _i64(year), "month_of_birth": _i64(month), "day_of_birth": _i64(dom),
        "birth_datetime": pa.array(bd.astype("datetime64[us]"), pa.timestamp("us")),
        "race_concept_id": _i64(np.array([RACE_IDS[r] for r in RACES])[p["race"]]),
        "ethnicity_concept_id": _i64(np.where(p["hispanic"], 38003563, 38003564)),
        "gender_source_value": _dict(p["female"], ["M", "F"]),
        "race_source_value": _dict(p["race"], list(RACES)),
        "ethnicity_source_value": _dict(p["hispanic"], ["Not Hispanic", "Hispanic"]),
    })
    tables["observation_period"] = pa.table({
        "observation_period_id": _i64(np.arange(pid, pid + n)), "person_id": _i64(np.arange(pid, pid + n)),
        "observation_period_start_date": _date(p["obs_start"]), "observation_period_end_date": _date(p["obs_end"]),
        "period_type_concept_id": _i64(np.full(n, EHR)),
    })
    dead = np.flatnonzero(p["death_day"] >= 0)
    tables["death"] = pa.table({"person_id": _i64(dead + pid), "death_date": _date(p["death_day"][dead]),
                                "death_type_concept_id": _i64(np.full(len(dead), EHR))})
    tables["visit_occurrence"] = pa.table({
        "visit_occurrence_id": _ids(ids, "visit", len(ukey)), "person_id": _i64(v_person + pid),
        "visit_concept_id": _i64(np.where(v_inp, INPATIENT, OUTPATIENT)),
        "visit_start_date": _date(v_day), "visit_end_date": _date(v_end),
        "visit_type_concept_id": _i64(np.full(len(ukey), EHR)),
        "visit_source_value": _dict(v_inp, ["OP", "IP"]),
    })
    m = len(cond["person"])
    tables["condition_occurrence"] = pa.table({
        "condition_occurrence_id": _ids(ids, "condition", m), "person_id": _i64(cond["person"] + pid),
        "condition_concept_id": _i64(cond["concept_id"]), "condition_start_date": _date(cond["day"]),
        "condition_type_concept_id": _i64(np.full(m, EHR)), "visit_occurrence_id": _i64(seg(0)),
        "condition_source_value": _dict(cond["code"], cond["code_values"]),
        "condition_source_concept_id": _i64(cond["source_concept_id"]),
    })
    m = len(drug["person"])
    names = bundled.names()
    uniq, inv = _lookup(drug["concept_id"])
    tables["drug_exposure"] = pa.table({
        "drug_exposure_id": _ids(ids, "drug", m), "person_id": _i64(drug["person"] + pid),
        "drug_concept_id": _i64(drug["concept_id"]), "drug_exposure_start_date": _date(drug["start"]),
        "drug_exposure_end_date": _date(drug["end"]), "drug_type_concept_id": _i64(np.full(m, EHR_RX)),
        "refills": _i64(drug["refills"]), "quantity": pa.array(drug["quantity"].astype(float)),
        "days_supply": _i64(drug["days_supply"]), "route_concept_id": _i64(drug["route"]),
        "visit_occurrence_id": _i64(seg(1)),
        "drug_source_value": _dict(inv, [names[int(u)] for u in uniq]),
        "drug_source_concept_id": _i64(drug["concept_id"]),
        "route_source_value": _dict(drug["route"] == TOPICAL, ["oral", "topical"]),
    })
    tables["measurement"] = _measurements(p, salt, labs, bmi_day, seg(2), seg(3), seg(4), ids, pid)
    tables["procedure_occurrence"] = pa.table({
        "procedure_occurrence_id": _ids(ids, "procedure", len(ivmp)), "person_id": _i64(ivmp + pid),
        "procedure_concept_id": _i64(np.full(len(ivmp), IVMP)), "procedure_date": _date(t["ivmp_day"][ivmp]),
        "procedure_type_concept_id": _i64(np.full(len(ivmp), EHR)), "visit_occurrence_id": _i64(seg(5)),
        "procedure_source_value": _dict(np.zeros(len(ivmp)), ["IVMP"]),
    })
    tables["observation"] = pa.table({
        "observation_id": _ids(ids, "observation", len(smk)), "person_id": _i64(smk + pid),
        "observation_concept_id": _i64(np.full(len(smk), SMOKING_STATUS)),
        "observation_date": _date(p["smoking_day"][smk]),
        "observation_type_concept_id": _i64(np.full(len(smk), EHR)),
        "value_as_string": _dict(np.zeros(len(smk)), ["Current every day smoker"]),
        "visit_occurrence_id": _i64(visit_id[off[6]:]), "observation_source_value": _dict(np.zeros(len(smk)), ["72166-2"]),
    })
    return tables


def fixed_tables(persons: int, seed: int) -> dict[str, pa.Table]:
    """The tables written once per world: ``cdm_source`` and the bundled vocabulary."""
    tables = {"cdm_source": pa.table({
        "cdm_source_name": ["Follicle synthetic alopecia areata world"], "cdm_source_abbreviation": ["follicle-synth"],
        "cdm_holder": ["Follicle"], "source_description": [f"follicle synth: {persons} persons, seed {seed}"],
        "source_release_date": pa.array([date(2025, 12, 31)], pa.date32()),
        "cdm_release_date": pa.array([date(2025, 12, 31)], pa.date32()),
        "cdm_version": ["5.4"], "cdm_version_concept_id": _i64([756265]), "vocabulary_version": ["follicle-bundled-1"],
    })}
    tables.update(bundled.vocabulary_tables())
    return tables


def _measurements(p, salt, labs, bmi_day, salt_visits, lab_visits, bmi_visits, ids: CdmIds, pid: int) -> pa.Table:
    n = len(p["female"])
    code = {2000100001: "SALT-TOTAL", 2000100002: "SALT-TOP", 2000100003: "SALT-BACK", 2000100004: "SALT-LEFT",
            2000100005: "SALT-RIGHT", 2000100006: "CLINRO-EYEBROW", 2000100007: "CLINRO-EYELASH", 2000100008: "AA-IGA"}
    loinc = {40764999: "62238-1", 3004327: "731-0", 3013650: "751-8", 3000963: "718-7", 3024929: "777-3",
             3006923: "1742-6", 3009966: "18262-6", BMI: "39156-5"}
    person = np.concatenate([salt["person"], labs["person"], np.arange(n)])
    concept = np.concatenate([salt["concept_id"], labs["concept_id"], np.full(n, BMI)])
    src = {**code, **loinc}
    uniq, inv = _lookup(concept)
    m = len(person)
    from follicle.synth.labs import LABS

    unit_values = [u[2] for u in LABS.values()] + ["kg/m2"]
    unit_idx = np.concatenate([np.zeros(len(salt["person"]), np.int32), labs["unit"], np.full(n, len(LABS))])
    valid = np.concatenate([np.zeros(len(salt["person"]), bool), np.ones(len(labs["person"]) + n, bool)])
    unit_sv = pa.DictionaryArray.from_arrays(pa.array(unit_idx.astype(np.int32), mask=~valid),
                                             pa.array(unit_values, pa.string()))
    return pa.table({
        "measurement_id": _ids(ids, "measurement", m), "person_id": _i64(person + pid),
        "measurement_concept_id": _i64(concept),
        "measurement_date": _date(np.concatenate([salt["day"], labs["day"], bmi_day])),
        "measurement_type_concept_id": _i64(np.concatenate([np.full(len(salt["person"]), EHR),
                                                            np.full(len(labs["person"]) + n, LAB)])),
        "value_as_number": pa.array(np.concatenate([salt["value"], labs["value"], p["bmi"]]).astype(float)),
        "unit_concept_id": _i64(np.concatenate([np.zeros(len(salt["person"]), int), labs["unit_concept_id"],
                                                np.zeros(n, int)])),
        "visit_occurrence_id": _i64(np.concatenate([salt_visits, lab_visits, bmi_visits])),
        "measurement_source_value": _dict(inv, [src[int(u)] for u in uniq]),
        "unit_source_value": unit_sv,
    })
