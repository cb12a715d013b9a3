"""FHIR Conditions and smoking-status Observations -> patient facts.

Code sets (each code checked, none guessed):

* **ICD-10-CM**: every code and category below was checked against the CMS FY2026 tabular as
  bundled in PyPI ``simple-icd-10-cm==1.5.0`` (the source of clinical.md §1.1); a category
  (e.g. ``A15``) covers its children. Codes are matched with or without the dot (``B18.1`` and
  ``B181`` alike: many systems send them without it). The hepatitis carrier codes Z22.51/Z22.52
  are not in that tabular and are not held.
* **SNOMED CT**: only concepts found in the OMOP vocabulary shipped with the project data
  (``shared/data/omop``: Synthea and GiBleed CONCEPT tables, vocabulary SNOMED) and the
  US Core smoking-status example (266919005). SNOMED codes for tuberculosis, latent TB and
  hepatitis B/C could not be verified: **not encoded**. So that such a Condition is not silently
  ignored, an active Condition without an ICD-10-CM code whose *name* says tuberculosis,
  hepatitis B or hepatitis C leaves that fact open (:func:`uncoded_open_facts`): a negative
  test is then not taken as reassurance, and the output says why.

A Condition whose ``verificationStatus`` is refuted or entered-in-error is ignored. A current
condition (TB, hepatitis, serious infection, pregnancy) counts only when its ``clinicalStatus`` is
active/recurrence/relapse or absent (absent is read as current: the safer reading); history facts
(malignancy, VTE, smoking) count whatever the status. Absence of a Condition is never read as
absence of the disease.
"""

from __future__ import annotations

import re
from typing import Any

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
SMOKING_LOINC = "72166-2"  # Tobacco smoking status (US Core smoking status profile)

#: (fact, value, needs current status) for ICD-10-CM code prefixes (category covers children)
ICD10_PREFIXES: list[tuple[tuple[str, ...], str, object, bool]] = [
    (("A15", "A17", "A18", "A19"), "tb_status", "active", True),          # tuberculosis (respiratory, CNS, other organs, miliary)
    (("Z22.7",), "tb_status", "latent", True),                           # latent tuberculosis
    (("R76.11", "R76.12"), "tb_status", "positive", True),               # positive TST / IGRA without active TB
    (("B16", "B17.0", "B18.0", "B18.1", "B19.1"), "hbv_status", "hbsag_positive", True),  # acute / delta superinfection of carrier / chronic / unspecified hepatitis B
    (("B17.1", "B18.2", "B19.2"), "hcv_status", "positive", True),       # acute / chronic / unspecified hepatitis C
    (("A40", "A41", "R65.2"), "active_infection", True, True),           # streptococcal / other sepsis; severe sepsis (with or without shock)
    (("A02.1", "A22.7", "A26.7", "A32.7", "A42.7", "A54.86", "B37.7", "T81.44", "O85"),
     "active_infection", True, True),                                    # salmonella, anthrax, erysipelothrix, listerial, actinomycotic, gonococcal, candidal, post-procedural, puerperal sepsis
    (("Z33.1", "Z3A", "Z34", "O09"), "pregnant", True, True),            # pregnant state; weeks of gestation; supervision of normal / high-risk pregnancy
    (("Z39.1",), "lactating", True, True),                               # care of lactating mother
    (("N18.6", "Z99.2", "Z94.0"), "esrd_or_renal_transplant", True, False),  # ESRD; dialysis; kidney transplant
    (("Z85",), "malignancy_history", True, False),                       # personal history of malignant neoplasm
    (("F17.2", "Z72.0"), "smoking", "current", True),                    # nicotine dependence; tobacco use
    (("Z87.891",), "smoking", "former", False),                          # history of nicotine dependence (duration unknown)
]
#: ICD-10-CM C00-C96 (malignant neoplasms) -> malignancy_history
MALIGNANT_RANGE = (0, 96)
#: ICD-10-CM codes for venous thromboembolism -> vte_risk_factors: prior_vte
VTE_PREFIXES = ("I26", "I80.1", "I80.2", "I82", "Z86.71")

#: SNOMED CT concept -> (fact, value, needs current status); from the OMOP vocabularies in shared/data/omop
SNOMED_CODES: dict[str, tuple[str, object, bool]] = {
    "91302008": ("active_infection", True, True),        # Sepsis
    "76571007": ("active_infection", True, True),        # Septic shock
    "46177005": ("esrd_or_renal_transplant", True, False),  # End-stage renal disease
    "448417001": ("active_infection", True, True),       # Sepsis due to Staphylococcus aureus
    "448813005": ("active_infection", True, True),       # Sepsis due to Pseudomonas
    "770349000": ("active_infection", True, True),       # Sepsis caused by virus
    "132281000119108": ("vte", "prior_vte", False),      # Acute deep venous thrombosis
    "706870000": ("vte", "prior_vte", False),            # Acute pulmonary embolism
    "254837009": ("malignancy_history", True, False),    # Malignant tumor of breast
    "363406005": ("malignancy_history", True, False),    # Malignant tumor of colon
    "93761005": ("malignancy_history", True, False),     # Primary malignant neoplasm of colon
    "94260004": ("malignancy_history", True, False),     # Secondary malignant neoplasm of colon
    "109838007": ("malignancy_history", True, False),    # Overlapping malignant neoplasm of colon
    "254632001": ("malignancy_history", True, False),    # Small cell carcinoma of lung
    "424132000": ("malignancy_history", True, False),    # Non-small cell carcinoma of lung, TNM stage 1
    "425048006": ("malignancy_history", True, False),    # ... stage 2
    "422968005": ("malignancy_history", True, False),    # ... stage 3
    "423121009": ("malignancy_history", True, False),    # ... stage 4
    "314994000": ("malignancy_history", True, False),    # Metastasis from malignant tumor of prostate
    "67811000119102": ("malignancy_history", True, False),  # Primary small cell malignant neoplasm of lung, TNM stage 1
    "67821000119109": ("malignancy_history", True, False),  # ... stage 2
    "67831000119107": ("malignancy_history", True, False),  # ... stage 3
    "67841000119103": ("malignancy_history", True, False),  # ... stage 4
    "72892002": ("pregnant", True, True),                # Normal pregnancy
    "47200007": ("pregnant", True, True),                # High risk pregnancy
    "79586000": ("pregnant", True, True),                # Tubal pregnancy
    "198992004": ("pregnant", True, True),               # Eclampsia in pregnancy
    "609496007": ("pregnant", True, True),               # Complication occurring during pregnancy
    "449868002": ("smoking", "current", True),           # Smokes tobacco daily
}
#: smoking-status answers (valueCodeableConcept)
SMOKING_SNOMED = {"266919005": "never", "449868002": "current"}

_CURRENT = {"active", "recurrence", "relapse"}
#: when several findings give one fact, the worse one wins
_RANK: dict[str, list[object]] = {
    "tb_status": ["negative", "latent_treated", "latent", "positive", "active"],
    "hbv_status": ["negative", "anti_hbc_positive", "hbsag_positive"],
    "hcv_status": ["negative", "positive"],
    "smoking": ["never", "former", "former_long_time", "current"],
}


def worse(fact: str, a: object, b: object) -> object:
    """The more severe of two values of *fact* (True over False for flags)."""
    if a is None:
        return b
    if b is None:
        return a
    rank = _RANK.get(fact)
    if rank is None:
        return a or b
    return a if rank.index(a) >= rank.index(b) else b


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _status(cond: dict, key: str) -> str | None:
    cc = cond.get(key)
    if not isinstance(cc, dict):
        return None
    for c in _list(cc.get("coding")):
        if isinstance(c, dict) and isinstance(c.get("code"), str):
            return c["code"]
    return None


def _codings(cond: dict) -> list[tuple[str, str]]:
    code = cond.get("code")
    if not isinstance(code, dict):
        return []
    return [(c.get("system"), c["code"].strip().upper() if c.get("system") == ICD10CM else c["code"].strip())
            for c in _list(code.get("coding")) if isinstance(c, dict) and isinstance(c.get("code"), str)]


def _undot(codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c.replace(".", "") for c in codes)


_ICD10_UNDOTTED = [(_undot(prefixes), f, v, cur) for prefixes, f, v, cur in ICD10_PREFIXES]
_VTE_UNDOTTED = _undot(VTE_PREFIXES)


def _icd10(code: str) -> list[tuple[str, object, bool]]:
    """Facts for an ICD-10-CM code, written with or without its dot (codes are positional)."""
    code = code.replace(".", "")
    out = [(f, v, cur) for prefixes, f, v, cur in _ICD10_UNDOTTED if code.startswith(prefixes)]
    if len(code) >= 3 and code[0] == "C" and code[1:3].isdigit() and MALIGNANT_RANGE[0] <= int(code[1:3]) <= MALIGNANT_RANGE[1]:
        out.append(("malignancy_history", True, False))
    if code.startswith(_VTE_UNDOTTED):
        out.append(("vte", "prior_vte", False))
    return out


#: names that leave a fact open when a current Condition carries no ICD-10-CM code (see module doc)
UNCODED_NAMES: list[tuple[str, re.Pattern[str]]] = [
    ("tb_status", re.compile(r"tubercul", re.I)),
    ("hbv_status", re.compile(r"\bhepatitis\s*b\b|\bhbv\b", re.I)),
    ("hcv_status", re.compile(r"\bhepatitis\s*c\b|\bhcv\b", re.I)),
]
#: names of encounters, screening, vaccination or exposure rather than the disease
_NOT_DISEASE = re.compile(r"screen|vaccin|immuniz|immunis|immune|contact with|exposure|negative", re.I)


def _names(cond: dict) -> list[str]:
    code = cond.get("code")
    if not isinstance(code, dict):
        return []
    out = [code["text"]] if isinstance(code.get("text"), str) else []
    return out + [c["display"] for c in _list(code.get("coding")) if isinstance(c, dict) and isinstance(c.get("display"), str)]


def uncoded_open_facts(conditions: list[dict]) -> dict[str, str]:
    """Facts left open by current Conditions that carry no ICD-10-CM code but whose name says TB or
    hepatitis B / C (their SNOMED codes could not be verified): fact -> the Condition's name."""
    out: dict[str, str] = {}
    for cond in conditions:
        if _status(cond, "verificationStatus") in {"refuted", "entered-in-error"}:
            continue
        clinical = _status(cond, "clinicalStatus")
        if clinical is not None and clinical not in _CURRENT:
            continue
        if any(system == ICD10CM for system, _ in _codings(cond)):
            continue  # ICD-10-CM codes are read exactly; a code not in the table is not one of these facts
        for name in _names(cond):
            if _NOT_DISEASE.search(name):
                continue
            for fact, pattern in UNCODED_NAMES:
                if pattern.search(name):
                    out.setdefault(fact, f"Condition/{cond.get('id', '?')} ({name})")
    return out


def condition_facts(conditions: list[dict]) -> tuple[dict[str, Any], list[str]]:
    """Facts read from Conditions, and a note per Condition that set one (for the output)."""
    facts: dict[str, Any] = {}
    notes: list[str] = []
    for cond in conditions:
        if _status(cond, "verificationStatus") in {"refuted", "entered-in-error"}:
            continue
        clinical = _status(cond, "clinicalStatus")
        current = clinical is None or clinical in _CURRENT
        hits: list[tuple[str, object, bool]] = []
        for system, code in _codings(cond):
            if system == ICD10CM:
                hits += _icd10(code)
            elif system == SNOMED and code in SNOMED_CODES:
                hits.append(SNOMED_CODES[code])
        for fact, value, needs_current in hits:
            if needs_current and not current:
                continue
            if fact == "vte":
                facts["vte_risk_factors"] = sorted(set(facts.get("vte_risk_factors", [])) | {value})
            else:
                facts[fact] = worse(fact, facts.get(fact), value)
            notes.append(f"Condition/{cond.get('id', '?')}: {fact} = {value!r}"
                         + ("" if clinical else " (no clinicalStatus: read as current)"))
    return facts, notes


def smoking_value(obs: dict) -> str | None:
    """never / former / current from a smoking-status Observation (SNOMED answer or its text)."""
    vcc = obs.get("valueCodeableConcept")
    if not isinstance(vcc, dict):
        return None
    for c in _list(vcc.get("coding")):
        if isinstance(c, dict) and c.get("system") == SNOMED and c.get("code") in SMOKING_SNOMED:
            return SMOKING_SNOMED[c["code"]]
    texts = [vcc.get("text")] + [c.get("display") for c in _list(vcc.get("coding")) if isinstance(c, dict)]
    for t in (x.lower() for x in texts if isinstance(x, str)):
        if "never" in t:
            return "never"
        if "former" in t or "ex-smoker" in t or t.startswith("ex "):
            return "former"
        if "smok" in t or "every day" in t or "some day" in t:
            return "current"
    return None
