"""Provenance: every source URL, code and RXCUI the CDS uses is either in the project reference
(shared/reference/clinical.md) or is one of the label copies looked up for issue 24 (listed
below, retrieved 2026-12-04 with the search tool), and every RXCUI / SNOMED code outside the
reference is a row of the OMOP vocabularies shipped with the project data (Synthea, GiBleed)."""

from __future__ import annotations

import csv

from follicle.cds.conditions import SMOKING_LOINC, SMOKING_SNOMED, SNOMED_CODES
from follicle.cds.fhir import AA_SNOMED, LOINC
from follicle.cds.kb import default_kb
from follicle.service.cards import CBC_LOINC

#: label copies looked up for issue 24 (EU SmPC / US PI texts), each cited by the rules that use it
ADDED_SOURCES = {
    "https://api.fda.gov/drug/label.json?search=openfda.generic_name%3A%22Deuruxolitinib+Phosphate%22",  # LEQSELVI boxed warning
    "https://archive.vn/lMXDF",  # LITFULO PI 6/2023 (labeling.pfizer.com)
    "https://ch.oddb.org/de/gcc/fachinfo/reg/66215/chapter/usage",  # Swiss Olumiant AA posology
    "https://pfizermedicalinformation.com/litfulo/info-for-patient",  # LITFULO PI 17
    "https://pfizermedicalinformation.com/patient/litfulo",  # LITFULO Medication Guide
    "https://py2.docketalarm.com/FDA/Orange_Book/207924/OLUMIANT/SUPPL-7/1-Label",  # OLUMIANT PI 06/2022
    "https://sit.mimsdev.com/singapore/drug/info/litfulo",
    "https://sit.mimsdev.com/singapore/drug/info/litfulo/dosage",
    "https://sit.mimsdev.com/thailand/drug/info/olumiant/special-precautions",
    "https://www.laoslucius.com/baricitinib/precautions",
    "https://www.lillymedical.eu/en-gb/answers/olumiant-baricitinib-use-of-vaccines-with-baricitinib-treatment-62959",
    "https://www.mims.com/thailand/drug/info/olumiant/use-in-pregnancy-lactation",
    "https://www.pfizermedicalinformation.com/en-us/litfulo/boxed-warning",
    "https://www.rxreasoner.com/monographs/litfulo/precautions",  # Litfulo EMA SmPC 4.3/4.4
    "https://www.silhouettedonna.it/salute-news/salute/farmaci/litfulo-30cps-50mg-pfizer-srl/",  # Italian SmPC
    # second review (search tool, 2026-12-04)
    "https://rxreasoner.com/monographs/olumiant/precautions",  # Olumiant EMA SmPC 4.3/4.4, revision 2024
    "https://sit.mimsdev.com/thailand/drug/info/olumiant/dosage",  # current SmPC 4.2 wording (RA/AD 2 mg from 65)
    "https://pfizermedicalinformation.com/litfulo/warnings",  # LITFULO PI 5.1
    "https://pfizermedicalinformation.com/litfulo/population-use",  # LITFULO PI 8.1
    "https://reference.medscape.com/drug/litfulo-ritlecitinib-4000322",  # LITFULO limitation of use (monograph wording)
    "https://rxreasoner.com/monographs/litfulo/usage",  # Litfulo EMA SmPC 4.2
    "https://www.laoslucius.com/ritlecitinib/dosage",  # LITFULO PI 2.1 text (FDA 2023.06, brand name replaced)
    "https://www.lillymedical.com/en-us/answers/what-is-the-recommended-olumiant-baricitinib-dose-for-the-treatment-of-rheumatoid-arthritis-49279",
}
#: codes looked up for issue 24 outside the reference: smoking-status LOINC and its never-smoked answer
#: (US Core smoking status example, HL7 US Core IG)
ADDED_CODES = {SMOKING_LOINC, "266919005"}


def _reference(shared_dir):
    return (shared_dir / "reference" / "clinical.md").read_text()


def _omop(shared_dir, vocabulary):
    out = {}
    for path in (shared_dir / "data" / "omop" / "synthea27nj" / "CONCEPT.csv", shared_dir / "data" / "omop" / "gibleed" / "concept.csv"):
        with path.open() as f:
            out |= {row["concept_code"]: row for row in csv.DictReader(f) if row["vocabulary_id"] == vocabulary}
    return out


def test_every_source_url_is_in_the_reference_or_declared(shared_dir):
    text = _reference(shared_dir)
    kb = default_kb()
    urls = {str(s.url) for r in kb.rules for s in (r.source, *r.also)}
    urls |= {str(d.source.url) for d in kb.drugs if d.source is not None}
    urls |= {str(x.url) for x in kb.labels if x.url is not None}
    missing = sorted(u for u in urls if u.rstrip("/") not in text and u not in text and u not in ADDED_SOURCES)
    missing = [u for u in missing if u != "https://github.com/OHDSI/PhenotypeLibrary"]  # cited as owner/name
    assert not missing, missing
    assert ADDED_SOURCES <= urls, "a declared source no rule uses any more"


def test_every_code_is_in_the_reference_or_the_shipped_vocabulary(shared_dir):
    text = _reference(shared_dir)
    codes = set(LOINC) | {CBC_LOINC, AA_SNOMED}
    assert not sorted(c for c in codes if c not in text and c not in ADDED_CODES)
    rxnorm = _omop(shared_dir, "RxNorm")
    for d in default_kb().drugs:
        if d.rxcui and d.rxcui not in text:
            row = rxnorm.get(d.rxcui)
            assert row and row["concept_class_id"] == "Ingredient" and row["concept_name"].lower() == d.name, d.name
    snomed = _omop(shared_dir, "SNOMED")
    for code in set(SNOMED_CODES) | set(SMOKING_SNOMED):
        assert code in snomed or code in ADDED_CODES or code in text, code
    cvx = _omop(shared_dir, "CVX")  # live vaccine CVX codes: rows of the OMOP CVX vocabulary naming a live vaccine
    for d in default_kb().drugs:
        for code in d.cvx:
            assert code in cvx and "live" in d.classes[0] and ("live" in cvx[code]["concept_name"] or "varicella" in cvx[code]["concept_name"]), code
