"""The services offered (discovery entries) and the prefetch each needs."""

from __future__ import annotations

from follicle.service.models import ServiceDescriptor
from follicle.service.prefetch import TEMPLATES

PATIENT_VIEW_ID = "aa-jaki-monitoring"
ORDER_ID = "aa-jaki-order-check"

PATIENT_VIEW_KEYS = ["patient", "labs", "conditions", "medications", "medication_statements"]
PATIENT_VIEW_REQUIRED = {"patient", "labs", "medications"}
ORDER_KEYS = ["patient", "labs", "conditions", "medications", "medication_statements", "immunizations"]
ORDER_REQUIRED = {"patient", "labs"}

_NOTE = " Supports, and does not replace, the clinician's judgement."

SERVICES = [
    ServiceDescriptor(
        hook="patient-view", id=PATIENT_VIEW_ID, title="AA JAK inhibitor monitoring",
        description="For a patient on a JAK inhibitor for alopecia areata: monitoring due or overdue per the labels and "
        "practice guidance, and abnormal labs on therapy." + _NOTE,
        prefetch={k: TEMPLATES[k] for k in PATIENT_VIEW_KEYS},
    ),
    ServiceDescriptor(
        hook="order-sign", id=ORDER_ID, title="AA JAK inhibitor order check",
        description="Checks a JAK inhibitor order for alopecia areata: contraindications, dose (renal step-down), "
        "missing screening, each with its source." + _NOTE,
        prefetch={k: TEMPLATES[k] for k in ORDER_KEYS},
    ),
    ServiceDescriptor(
        hook="order-select", id=ORDER_ID, title="AA JAK inhibitor order check",
        description="Checks a selected JAK inhibitor order for alopecia areata: contraindications, dose, missing "
        "screening, each with its source." + _NOTE,
        prefetch={k: TEMPLATES[k] for k in ORDER_KEYS},
    ),
]
SERVICE_IDS = {s.id for s in SERVICES}
