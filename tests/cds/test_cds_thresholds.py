"""Label thresholds checked independently of the knowledge base.

The scenario suite (test_cds_scenarios.py) derives its patients from the knowledge base itself, so a
wrong number in the YAML would move both the rule and its test. Here every threshold is typed in from
``shared/reference/clinical.md`` section 3 (3.1 baricitinib, 3.2 ritlecitinib, 3.3 deuruxolitinib,
3.4 class table), and a patient just below, at and just above it goes through the engine: the
decision must be "do-not-start" exactly below the start threshold, in every region whose label is
encoded for the drug.
"""

from __future__ import annotations

import pytest

from follicle.cds.engine import evaluate
from follicle.cds.facts import LabValue

from cds_helpers import AS_OF, healthy_facts

# drug, region, fact, unit, threshold below which the label says do not start (clinical.md section)
START = [
    ("baricitinib", "US", "lymphocytes", "cells/mm3", 500, "3.1"),
    ("baricitinib", "US", "neutrophils", "cells/mm3", 1000, "3.1"),
    ("baricitinib", "US", "haemoglobin", "g/dL", 8, "3.1"),
    ("baricitinib", "EU", "lymphocytes", "cells/mm3", 500, "3.1 (0.5 x 10^9/L)"),
    ("baricitinib", "EU", "neutrophils", "cells/mm3", 1000, "3.1 (1 x 10^9/L)"),
    ("baricitinib", "EU", "haemoglobin", "g/dL", 8, "3.1"),
    ("ritlecitinib", "US", "lymphocytes", "cells/mm3", 500, "3.2"),
    ("ritlecitinib", "US", "platelets", "cells/mm3", 100_000, "3.2"),
    ("ritlecitinib", "EU", "lymphocytes", "cells/mm3", 500, "3.2"),
    ("ritlecitinib", "EU", "platelets", "cells/mm3", 100_000, "3.2"),
    ("deuruxolitinib", "US", "lymphocytes", "cells/mm3", 500, "3.3"),
    ("deuruxolitinib", "US", "neutrophils", "cells/mm3", 1000, "3.3"),
    ("deuruxolitinib", "US", "haemoglobin", "g/dL", 8, "3.3"),
]

# the same thresholds in other units the record may carry (cells/mm3 = 10*3/uL x 1000; g/dL = g/L / 10)
UNIT_FORMS = {"cells/mm3": [("10*3/uL", 1e-3)], "g/dL": [("g/L", 10.0)]}


def _decide(drug: str, region: str, fact: str, value: float, unit: str) -> str:
    facts = healthy_facts(**{fact: LabValue(value=value, unit=unit, date=AS_OF)})
    return evaluate(facts, drug, region=region, compare=False).decision


@pytest.mark.parametrize("drug,region,fact,unit,threshold,section", START,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in START])
def test_start_threshold_below_at_above(drug, region, fact, unit, threshold, section):
    baseline = _decide(drug, region, fact, threshold * 2, unit)
    assert baseline != "do-not-start", "a patient well above the threshold is not refused for it"
    for u, factor in [(unit, 1.0), *UNIT_FORMS[unit]]:
        t = threshold * factor
        eps = t * 1e-3
        assert _decide(drug, region, fact, t - eps, u) == "do-not-start", f"{fact} just below {t} {u} (clinical.md {section})"
        assert _decide(drug, region, fact, t, u) == baseline, f"{fact} at {t} {u} is not below the threshold"
        assert _decide(drug, region, fact, t + eps, u) == baseline, f"{fact} just above {t} {u}"


# renal function below which the label says "not recommended" (clinical.md 3.1 EU: CrCl < 30; US: eGFR < 30; 3.3)
RENAL = [("baricitinib", "US", "egfr", "mL/min/1.73m2", 30), ("deuruxolitinib", "US", "egfr", "mL/min/1.73m2", 30)]


@pytest.mark.parametrize("drug,region,fact,unit,threshold", RENAL, ids=[f"{r[0]}-{r[1]}" for r in RENAL])
def test_renal_not_recommended_below_30(drug, region, fact, unit, threshold):
    assert _decide(drug, region, fact, threshold - 0.1, unit) == "do-not-start"
    assert _decide(drug, region, fact, threshold, unit) != "do-not-start"


def test_ritlecitinib_platelets_below_50k_on_treatment_discontinue():
    """clinical.md 3.2: platelets < 50,000/mm3 on treatment -> discontinue."""
    def on_treatment(value: float) -> list[str]:
        facts = healthy_facts(platelets=LabValue(value=value, unit="cells/mm3", date=AS_OF))
        d = evaluate(facts, "ritlecitinib", region="US", mode="on_treatment", compare=False)
        return [r.action for r in d.reasons if r.topic.startswith("platelet")]

    assert "discontinue" in on_treatment(49_999)
    assert "discontinue" not in on_treatment(50_000)


def test_baricitinib_us_egfr_30_to_60_steps_down():
    """clinical.md 3.1 (US AA table, [P]): eGFR 30 to < 60 -> 4 mg becomes 2 mg; < 30 not recommended."""
    def dose_rules(egfr: float) -> set[str]:
        facts = healthy_facts(egfr=LabValue(value=egfr, unit="mL/min/1.73m2", date=AS_OF))
        d = evaluate(facts, "baricitinib", region="US", compare=False)
        return {a.topic for a in (d.dose.adjustments if d.dose else [])}

    assert dose_rules(45) and not dose_rules(60) and not dose_rules(95)
