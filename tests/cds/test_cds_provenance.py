"""Provenance: every source URL, LOINC code and RXCUI the CDS uses appears in the project reference
(shared/reference/clinical.md), so nothing was cited or coded from outside it."""

from __future__ import annotations

from follicle.cds.fhir import AA_SNOMED, LOINC
from follicle.cds.kb import default_kb
from follicle.service.cards import CBC_LOINC


def _reference(shared_dir):
    return (shared_dir / "reference" / "clinical.md").read_text()


def test_every_source_url_is_in_the_reference(shared_dir):
    text = _reference(shared_dir)
    kb = default_kb()
    urls = {str(s.url) for r in kb.rules for s in (r.source, *r.also)}
    urls |= {str(d.source.url) for d in kb.drugs if d.source is not None}
    missing = sorted(u for u in urls if u.rstrip("/") not in text and u not in text)
    # the PhenotypeLibrary repository is cited in the reference by owner/name, not by URL
    missing = [u for u in missing if u != "https://github.com/OHDSI/PhenotypeLibrary"]
    assert not missing, missing


def test_every_code_is_in_the_reference(shared_dir):
    text = _reference(shared_dir)
    codes = set(LOINC) | {CBC_LOINC, AA_SNOMED}
    codes |= {d.rxcui for d in default_kb().drugs if d.rxcui}
    assert not sorted(c for c in codes if c not in text)
