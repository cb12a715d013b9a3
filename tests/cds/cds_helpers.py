"""Shared builders for the CDS tests."""

from __future__ import annotations

from datetime import date

from follicle.cds.facts import Concomitant, LabValue, PatientFacts

AS_OF = date(2026, 3, 1)


def healthy_facts(**over) -> PatientFacts:
    """An adult whose every fact is known and within every threshold (nothing fires)."""
    d = dict(
        as_of=AS_OF, patient_id="p", age_years=40, sex="male", pregnant=False, lactating=False,
        egfr=LabValue(value=95, unit="mL/min/1.73m2", date=AS_OF), hepatic_class="none",
        lymphocytes=LabValue(value=1.8, unit="10*3/uL", date=AS_OF),
        neutrophils=LabValue(value=4.0, unit="10*3/uL", date=AS_OF),
        haemoglobin=LabValue(value=14.0, unit="g/dL", date=AS_OF),
        platelets=LabValue(value=250, unit="10*3/uL", date=AS_OF),
        liver_enzymes=LabValue(value=20, unit="U/L", date=AS_OF),
        lipids=LabValue(value=100, unit="mg/dL", date=AS_OF),
        tb_status="negative", hbv_status="negative", hcv_status="negative", active_infection=False,
        vte_risk_factors=[], malignancy_history=False, smoking="never", cv_risk=False, zoster_vaccinated=True, immunizations_up_to_date=True,
        cyp2c9_poor_metabolizer=False, esrd_or_renal_transplant=False, concomitant=[],
    )
    d.update(over)
    return PatientFacts(**d)


def med(name: str, *classes: str) -> Concomitant:
    return Concomitant(name=name, classes=classes)  # type: ignore[arg-type]
