"""Clinical scenarios generated from the knowledge base: for every conditional rule a patient who
fires it and one who just misses it, written as a FHIR record (plus ``--fact`` for what FHIR
cannot carry: Child-Pugh class, CYP2C9 genotype, creatinine clearance, cardiovascular risk...).

The "just misses" patient sits exactly at a numeric threshold (or one year short of an age), or
holds the nearest value that the rule does not name (latent TB treated instead of untreated,
Child-Pugh B instead of C, a drug outside the class).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from follicle.cds.kb import Rule
from follicle.cds.units import CANONICAL_UNITS

AS_OF = date(2026, 3, 1)
PID = "pt1"
LOINC = {"lymphocytes": "731-0", "neutrophils": "751-8", "haemoglobin": "718-7", "platelets": "777-3",
         "egfr": "98979-8", "liver_enzymes": "1742-6", "lipids": "18262-6"}
BASE: dict = dict(
    age_years=40, sex="male", pregnant=False, lactating=False, egfr=95.0, crcl=95.0, hepatic_class="none",
    lymphocytes=1.8, neutrophils=4.0, haemoglobin=14.0, platelets=250.0, liver_enzymes=20.0, lipids=100.0,
    tb_status="negative", hbv_status="negative", hcv_status="negative", active_infection=False, vte_risk_factors=[],
    malignancy_history=False, smoking="never", cv_risk=False, zoster_vaccinated=True, immunizations_up_to_date=True,
    cyp2c9_poor_metabolizer=False, esrd_or_renal_transplant=False, concomitant=[],
)
CLASS_DRUG = {"jak_inhibitor": "upadacitinib", "biologic_immunomodulator": "adalimumab", "potent_immunosuppressant": "tacrolimus",
              "strong_oat3_inhibitor": "probenecid", "strong_cyp3a_inducer": "rifampin",
              "moderate_or_strong_cyp2c9_inhibitor": "fluconazole", "live_vaccine": "varicella vaccine"}
NEAR_MISS = {("tb_status", "active"): "latent", ("tb_status", "latent"): "latent_treated",
             ("hbv_status", "hbsag_positive"): "anti_hbc_positive", ("hbv_status", "anti_hbc_positive"): "negative",
             ("hcv_status", "positive"): "negative", ("hepatic_class", "C"): "B", ("smoking", "current"): "never",
             ("smoking", "former_long_time"): "never"}
DOMAIN = {"tb_status": {"negative", "latent_treated", "latent", "active", "positive"},
          "hbv_status": {"negative", "hbsag_positive", "anti_hbc_positive"}, "hcv_status": {"negative", "positive"},
          "hepatic_class": {"none", "A", "B", "C"}, "smoking": {"never", "current", "former", "former_long_time"}}


@dataclass
class Case:
    rule: Rule
    region: str
    fires: bool
    values: dict
    mode: str = "start"
    name: str = ""
    resources: list = field(default_factory=list)
    fact_args: list = field(default_factory=list)
    key_facts: tuple = ()

    @property
    def drug(self) -> str:
        return self.rule.drugs[0]

    @property
    def own_facts_in_fhir(self) -> bool:
        """True when every fact the rule tests travels in the FHIR record (no --fact needed)."""
        given = {a.split("=", 1)[0] for a in self.fact_args}
        return not (set(self.key_facts) & given)


def _num(rule: Rule, fires: bool) -> dict:
    c, f = rule.condition, rule.condition.facts[0]  # type: ignore[union-attr]
    t = rule.threshold_in(CANONICAL_UNITS[f])
    if f == "age_years":
        v = int(t.value)  # type: ignore[arg-type]
        return {f: {"<": v - 1, ">=": v}[c.op] if fires else {"<": v, ">=": v - 1}[c.op]}  # type: ignore[union-attr]
    if c.op == "<":  # type: ignore[union-attr]
        return {f: round(t.value * 0.998, 6) if fires else t.value}  # type: ignore[operator]
    if c.op == "between":  # type: ignore[union-attr]
        return {f: t.low if fires else round(t.low * 0.998, 6)}  # type: ignore[operator]
    raise AssertionError(f"{rule.id}: no scenario for op {c.op}")  # type: ignore[union-attr]


def _categorical(rule: Rule, fires: bool) -> dict:
    c = rule.condition
    f = c.facts[0]  # type: ignore[union-attr]
    if c.op == "any_of":  # type: ignore[union-attr]
        want = c.values[0]  # type: ignore[union-attr, index]
        if f == "concomitant":
            cls = want[6:]
            miss = "mycophenolate mofetil" if cls == "potent_immunosuppressant" else "methotrexate"
            return {f: [CLASS_DRUG[cls]] if fires else [miss]}
        return {f: [want] if fires else []}
    out: dict = {}
    for fact in c.facts:  # type: ignore[union-attr]
        vals = [v for v in c.values if (fact not in DOMAIN and isinstance(v, bool)) or v in DOMAIN.get(fact, ())]  # type: ignore[union-attr]
        if not vals:
            continue
        v = vals[0]
        if fires:
            return {fact: v}
        out[fact] = NEAR_MISS.get((fact, v), (not v) if isinstance(v, bool) else None)
    return out


def cases_for(rule: Rule) -> list[Case]:
    """The firing and the just-missing patient of *rule*, for each region it belongs to."""
    c = rule.condition
    if c is None or rule.kind == "screening":
        return []
    mode = "on_treatment" if rule.phase == "on_treatment" else "start"
    out = []
    for region in rule.regions:
        for fires in (True, False):
            over = _num(rule, fires) if c.op in {"<", ">=", "between"} else _categorical(rule, fires)
            values = dict(BASE, **over)
            if set(over) & {"pregnant", "lactating"}:
                values["sex"] = "female"  # the pregnancy and lactation rules apply to women
            case = Case(rule, region, fires, values, mode, name=f"{rule.id}[{region},{'fires' if fires else 'misses'}]",
                        key_facts=tuple(over))
            case.resources, case.fact_args = to_record(values)
            out.append(case)
    return out


def _obs(oid: str, loinc: str, **value) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "effectiveDateTime": AS_OF.isoformat(),
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}, **value}


def _cond(cid: str, icd: str) -> dict:
    return {"resourceType": "Condition", "id": cid, "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd}]}}


def _med(mid: str, name: str, status: str = "active") -> dict:
    return {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
            "medicationCodeableConcept": {"text": name}, "subject": {"reference": f"Patient/{PID}"}}


def to_record(v: dict) -> tuple[list[dict], list[str]]:
    """FHIR resources for the facts FHIR can carry, and ``--fact`` arguments for the rest."""
    res: list[dict] = [{"resourceType": "Patient", "id": PID, "gender": v["sex"],
                        "birthDate": date(AS_OF.year - v["age_years"], AS_OF.month, AS_OF.day).isoformat()}]
    args: list[str] = []

    def fact(name: str, value: object) -> None:
        if value is not None:
            args.append(f"{name}={json.dumps(value)}")

    for a, code in LOINC.items():
        if v.get(a) is not None:
            res.append(_obs(a, code, valueQuantity={"value": v[a], "unit": CANONICAL_UNITS[a], "system": "http://unitsofmeasure.org"}))
    if v.get("crcl") is not None:
        fact("crcl", {"value": v["crcl"], "unit": "mL/min"})
    if v.get("pregnant") is not None:
        res.append(_obs("hcg", "2106-3", valueString="Positive" if v["pregnant"] else "Negative"))
    tb = v.get("tb_status")
    if tb in ("negative", "positive"):
        res.append(_obs("igra", "71773-6", valueString=tb.capitalize()))
    elif tb in ("active", "latent"):
        res.append(_cond("tb", "A15.0" if tb == "active" else "Z22.7"))
    else:
        fact("tb_status", tb)
    hbv = v.get("hbv_status")
    if hbv in ("negative", "hbsag_positive"):
        res.append(_obs("hbsag", "5196-1", valueString="Positive" if hbv == "hbsag_positive" else "Negative"))
    else:
        fact("hbv_status", hbv)
    if v.get("hcv_status") is not None:
        res.append(_obs("hcv", "13955-0", valueString=v["hcv_status"].capitalize()))
    flags = {"lactating": "Z39.1", "active_infection": "A41.9", "malignancy_history": "Z85.9", "esrd_or_renal_transplant": "N18.6"}
    for name, icd in flags.items():
        if v.get(name) is True:
            res.append(_cond(name, icd))
        else:
            fact(name, v.get(name))
    sm = v.get("smoking")
    if sm in ("never", "current"):
        res.append(_obs("smoking", "72166-2", valueCodeableConcept={"coding": [
            {"system": "http://snomed.info/sct", "code": {"never": "266919005", "current": "449868002"}[sm]}]}))
    else:
        fact("smoking", sm)
    vte = v.get("vte_risk_factors")
    if vte == ["prior_vte"]:
        res.append(_cond("vte", "Z86.718"))
    else:
        fact("vte_risk_factors", vte)
    meds = v.get("concomitant")
    if meds is not None:
        res.append(_med("old", "prednisone", status="completed"))  # the medication list is known
        res += [_med(f"m{i}", name) for i, name in enumerate(meds)]
    for name in ("hepatic_class", "cv_risk", "zoster_vaccinated", "immunizations_up_to_date", "cyp2c9_poor_metabolizer"):
        fact(name, v.get(name))
    return res, args


def bundle(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
