"""Patient facts the rules test. ``None`` always means *not known* (never *normal*).

Lab values are held in the canonical unit of :data:`follicle.cds.units.CANONICAL_UNITS`
(counts in 10*3/uL, haemoglobin in g/dL, eGFR in mL/min/1.73m2) together with the date of the
result; ``history`` keeps every dated result, for finding overdue monitoring tasks.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from follicle.cds.units import CANONICAL_UNITS, convert

Sex = Literal["female", "male", "other", "unknown"]
HepaticClass = Literal["none", "A", "B", "C"]
TbStatus = Literal["negative", "latent_treated", "latent", "active", "positive"]
HbvStatus = Literal["negative", "hbsag_positive", "anti_hbc_positive"]
HcvStatus = Literal["negative", "positive"]
VteRiskFactor = Literal[
    "prior_vte", "surgery_or_immobilisation", "hormonal_contraceptive_or_hrt",
    "inherited_coagulation_disorder", "obesity",
]
DrugClass = Literal[
    "jak_inhibitor", "biologic_immunomodulator", "potent_immunosuppressant",
    "strong_oat3_inhibitor", "strong_cyp3a_inducer", "moderate_or_strong_cyp2c9_inhibitor", "live_vaccine",
]
#: never / current / former (duration unknown) / former long-time smoker (EU restriction wording)
Smoking = Literal["never", "current", "former", "former_long_time"]
Analyte = Literal["lymphocytes", "neutrophils", "haemoglobin", "platelets", "egfr", "liver_enzymes", "lipids"]


Comparator = Literal["<", "<=", ">", ">="]


class LabValue(BaseModel):
    """One dated lab result in the analyte's canonical unit (as given for presence-only analytes).

    ``comparator`` (FHIR ``valueQuantity.comparator``) makes the value a bound: ``<`` 0.5 means
    some value below 0.5. The engine fires a rule only when every value within the bound fires it,
    and leaves it open when the bound straddles the threshold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float = Field(allow_inf_nan=False)
    unit: str
    date: dt.date | None = None
    source_id: str | None = None
    comparator: Comparator | None = None

    @classmethod
    def of(cls, analyte: str, value: float, unit: str, when: dt.date | None = None, source_id: str | None = None,
           comparator: Comparator | None = None) -> LabValue:
        """Build from a value in any supported *unit*, converting to the canonical unit."""
        if not math.isfinite(value):
            raise ValueError(f"{analyte}: value must be finite, got {value}")
        if comparator not in (None, "<", "<=", ">", ">="):
            raise ValueError(f"{analyte}: comparator must be <, <=, > or >=, got {comparator!r}")
        if analyte in {"liver_enzymes", "lipids"}:  # presence only: keep as given
            return cls.model_construct(value=float(value), unit=unit, date=when, source_id=source_id, comparator=comparator)
        canon = CANONICAL_UNITS[analyte]
        # fields are checked here (finite float, canonical unit), so no second validation pass
        return cls.model_construct(value=convert(value, unit, canon, analyte=analyte), unit=canon, date=when, source_id=source_id,
                                   comparator=comparator)


class HistoryEntry(BaseModel):
    """A dated lab result of any analyte, for monitoring (value optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    analyte: Analyte
    date: dt.date
    value: float | None = None
    unit: str | None = None


class Concomitant(BaseModel):
    """A drug the patient takes, by ingredient name, with the classes the rules refer to."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    classes: tuple[DrugClass, ...] = ()
    #: ``unidentified``: a medication the record holds but that names no drug that could be read (a code
    #: only, not in the catalogue); it may belong to any class, so class rules that do not fire stay open
    matched_by: Literal["rxcui", "name", "given", "unidentified"] = "given"
    source_id: str | None = None


class PatientFacts(BaseModel):
    """What the engine knows about one patient on one date (``as_of``)."""

    model_config = ConfigDict(extra="forbid")
    as_of: dt.date
    patient_id: str | None = None
    age_years: int | None = Field(default=None, ge=0, le=150)
    sex: Sex | None = None
    pregnant: bool | None = None
    lactating: bool | None = None
    egfr: LabValue | None = None
    crcl: LabValue | None = None
    hepatic_class: HepaticClass | None = None
    lymphocytes: LabValue | None = None
    neutrophils: LabValue | None = None
    haemoglobin: LabValue | None = None
    platelets: LabValue | None = None
    liver_enzymes: LabValue | None = None
    lipids: LabValue | None = None
    tb_status: TbStatus | None = None
    hbv_status: HbvStatus | None = None
    hcv_status: HcvStatus | None = None
    active_infection: bool | None = None
    vte_risk_factors: list[VteRiskFactor] | None = None
    malignancy_history: bool | None = None
    smoking: Smoking | None = None
    cv_risk: bool | None = None
    zoster_vaccinated: bool | None = None
    immunizations_up_to_date: bool | None = None
    cyp2c9_poor_metabolizer: bool | None = None
    esrd_or_renal_transplant: bool | None = None
    concomitant: list[Concomitant] | None = None
    history: list[HistoryEntry] = Field(default_factory=list)

    @field_validator("egfr", "crcl", "lymphocytes", "neutrophils", "haemoglobin", "platelets")
    @classmethod
    def _canonical(cls, v: LabValue | None, info) -> LabValue | None:  # type: ignore[no-untyped-def]
        if v is not None and v.unit != CANONICAL_UNITS[info.field_name]:
            return LabValue.of(info.field_name, v.value, v.unit, v.date, v.source_id, v.comparator)
        return v

    def lab_history(self) -> list[HistoryEntry]:
        """``history`` plus the dated current lab values not already in it."""
        seen = {(h.analyte, h.date) for h in self.history}
        out = list(self.history)
        for a in ("lymphocytes", "neutrophils", "haemoglobin", "platelets", "egfr", "liver_enzymes", "lipids"):
            v = getattr(self, a)
            if v is not None and v.date is not None and (a, v.date) not in seen:
                out.append(HistoryEntry(analyte=a, date=v.date, value=v.value, unit=v.unit))  # type: ignore[arg-type]
        return out

    def value_of(self, fact: str) -> object:
        """The value a rule compares: a number for labs and age, else the field itself."""
        v = getattr(self, fact)
        return v.value if isinstance(v, LabValue) else v
