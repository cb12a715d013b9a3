"""Table-driven threshold tests: for every numeric rule, a value just below, at and just above.

Each row names the source the threshold comes from (as in shared/reference/clinical.md §3).
A rule "fires" when the patient meets its condition (e.g. ALC < 500 -> do not start).
"""

from __future__ import annotations

import pytest

from follicle.cds.engine import evaluate, evaluate_rule
from follicle.cds.facts import LabValue
from follicle.cds.kb import default_kb
from cds_helpers import AS_OF, healthy_facts

MEDSCAPE = "https://reference.medscape.com/drug/olumiant-baricitinib-1000107"
AAFP = "https://aafp.org/pubs/afp/issues/2023/1100/steps-baricitinib-alopecia-areata.html"
TAYLOR = "https://pmc.ncbi.nlm.nih.gov/articles/PMC9939375"
PFIZER_MI = "https://www.pfizermedicalinformation.com/en-us/litfulo/dosage-admin"
PFIZERMED = "https://www.pfizermedical.com/litfulo/dosage-admin"
DRUGS_DEU = "https://www.drugs.com/dosage/deuruxolitinib.html"

# rule id, fact, unit, (below, at, above), fires (below, at, above), source URL
ROWS = [
    ("baricitinib.start.lymphocytes", "lymphocytes", "cells/mm3", (499, 500, 501), (True, False, False), MEDSCAPE),
    ("baricitinib.start.lymphocytes", "lymphocytes", "10*3/uL", (0.499, 0.5, 0.501), (True, False, False), MEDSCAPE),
    ("baricitinib.start.neutrophils", "neutrophils", "cells/mm3", (999, 1000, 1001), (True, False, False), MEDSCAPE),
    ("baricitinib.start.neutrophils", "neutrophils", "10*9/L", (0.999, 1.0, 1.001), (True, False, False), MEDSCAPE),
    ("baricitinib.start.haemoglobin", "haemoglobin", "g/dL", (7.9, 8.0, 8.1), (True, False, False), MEDSCAPE),
    ("baricitinib.start.haemoglobin", "haemoglobin", "g/L", (79, 80, 81), (True, False, False), MEDSCAPE),
    ("baricitinib.renal.not_recommended", "egfr", "mL/min/1.73m2", (29.9, 30, 30.1), (True, False, False), MEDSCAPE),
    ("baricitinib.renal.step_down", "egfr", "mL/min/1.73m2", (29.9, 30, 30.1), (False, True, True), MEDSCAPE),
    ("baricitinib.renal.step_down", "egfr", "mL/min/1.73m2", (59.9, 60, 60.1), (True, False, False), MEDSCAPE),
    ("baricitinib.start.age", "age_years", "a", (17, 18, 19), (True, False, False), AAFP),
    ("baricitinib.caution.at_risk_age", "age_years", "a", (64, 65, 66), (False, True, True), TAYLOR),
    ("ritlecitinib.start.age", "age_years", "a", (11, 12, 13), (True, False, False), PFIZER_MI),
    ("ritlecitinib.start.lymphocytes", "lymphocytes", "cells/mm3", (499, 500, 501), (True, False, False), PFIZER_MI),
    ("ritlecitinib.start.platelets", "platelets", "cells/mm3", (99_999, 100_000, 100_001), (True, False, False), PFIZER_MI),
    ("ritlecitinib.start.platelets", "platelets", "10*3/uL", (99.999, 100, 100.001), (True, False, False), PFIZER_MI),
    ("ritlecitinib.treat.platelets", "platelets", "cells/mm3", (49_999, 50_000, 50_001), (True, False, False), PFIZERMED),
    ("deuruxolitinib.start.age", "age_years", "a", (17, 18, 19), (True, False, False), DRUGS_DEU),
    ("deuruxolitinib.start.lymphocytes", "lymphocytes", "cells/mm3", (499, 500, 501), (True, False, False), DRUGS_DEU),
    ("deuruxolitinib.start.neutrophils", "neutrophils", "cells/mm3", (999, 1000, 1001), (True, False, False), DRUGS_DEU),
    ("deuruxolitinib.start.haemoglobin", "haemoglobin", "g/dL", (7.9, 8.0, 8.1), (True, False, False), DRUGS_DEU),
    ("deuruxolitinib.renal.not_recommended", "egfr", "mL/min/1.73m2", (29.9, 30, 30.1), (True, False, False), DRUGS_DEU),
]


def _facts_with(fact: str, value: float, unit: str):
    if fact == "age_years":
        return healthy_facts(age_years=int(value))
    return healthy_facts(**{fact: LabValue.of(fact, value, unit, AS_OF)})


def _rule(rule_id: str):
    return next(r for r in default_kb().rules if r.id == rule_id)


@pytest.mark.parametrize("rule_id,fact,unit,values,fires,source", ROWS, ids=[f"{r[0]}[{r[2]},{r[3][1]}]" for r in ROWS])
def test_threshold_below_at_above(rule_id, fact, unit, values, fires, source):
    rule = _rule(rule_id)
    assert str(rule.source.url) == source or source in {str(s.url) for s in rule.also}, "row names the rule's source"
    drug = rule.drugs[0]
    for value, expected in zip(values, fires):
        facts = _facts_with(fact, value, unit)
        assert evaluate_rule(rule, facts, drug) is expected, f"{rule_id} at {value} {unit}"
        # and the same through the engine: the reason is listed exactly when the rule fires
        mode = "on_treatment" if rule.phase == "on_treatment" else "start"
        d = evaluate(facts, drug, mode=mode)
        listed = rule_id in {r.rule_id for r in d.reasons} | {a.rule_id for a in (d.dose.adjustments if d.dose else [])}
        assert listed is expected, f"{rule_id} listed at {value} {unit}"


def test_every_numeric_rule_has_a_row():
    numeric = {r.id for r in default_kb().rules if r.threshold is not None}
    assert numeric == {r[0] for r in ROWS}


def test_do_not_start_at_threshold_breach_sets_decision():
    d = evaluate(healthy_facts(lymphocytes=LabValue.of("lymphocytes", 499, "cells/mm3", AS_OF)), "baricitinib")
    assert d.decision == "do-not-start"
    assert d.reasons[0].severity == "critical"
    assert str(d.reasons[0].source.url) == MEDSCAPE
