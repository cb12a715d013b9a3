"""Map a FHIR medication CodeableConcept to an ingredient in the drug catalogue (``kb/drugs.yaml``).

First by RxNorm code: the ingredient RXCUIs from clinical.md §1.3. MedicationRequests usually
carry an SCD/SBD (clinical drug) code rather than the ingredient, and the RXCUIs of
ritlecitinib, deuruxolitinib and upadacitinib are unknown to the reference, so the fallback is the
ingredient or brand name as a whole word in ``coding.display`` or ``text``. The match records
which way it was found (``matched_by``) so the output can say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from follicle.cds.kb import DrugEntry, KnowledgeBase, default_kb

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass(frozen=True)
class DrugMatch:
    drug: DrugEntry
    matched_by: str  # "rxcui" or "name"
    text: str
    topical: bool


def _codings(concept: dict) -> list:
    coding = concept.get("coding")
    return coding if isinstance(coding, list) else []


def _texts(concept: dict) -> list[str]:
    out = [concept.get("text")] if isinstance(concept.get("text"), str) else []
    for c in _codings(concept):
        if isinstance(c, dict) and isinstance(c.get("display"), str):
            out.append(c["display"])
    return out


def match_medication(concept: dict, kb: KnowledgeBase | None = None) -> DrugMatch | None:
    """The catalogue ingredient named by *concept* (a CodeableConcept dict), or None."""
    kb = kb or default_kb()
    texts = _texts(concept)
    joined = " | ".join(texts)
    low = joined.lower()
    for c in _codings(concept):
        if isinstance(c, dict) and c.get("system") == RXNORM and isinstance(c.get("code"), str):
            for d in kb.drugs:
                if d.rxcui and d.rxcui == c["code"]:
                    return DrugMatch(d, "rxcui", joined or c["code"], is_topical(d, low))
    best: DrugEntry | None = None
    best_len = 0
    for d in kb.drugs:
        for name in d.names:
            if re.search(rf"\b{re.escape(name)}\b", low) and len(name) > best_len:
                best, best_len = d, len(name)
    if best is not None:
        return DrugMatch(best, "name", joined, is_topical(best, low))
    return None


def is_topical(d: DrugEntry, low: str) -> bool:
    """True when lower-case text *low* (name, dose form or route) names one of the drug's topical forms."""
    return any(re.search(rf"\b{re.escape(n)}\b", low) for n in d.topical_names)

