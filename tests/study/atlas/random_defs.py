"""Random Circe definitions over concepts that GiBleed holds, for differential tests against Circe's
own SQL: every element the compiler implements, combined as a seed decides."""

from __future__ import annotations

import random
from typing import Any

# concept sets (id -> (name, domain kinds, items)); items: (concept_id, descendants, mapped, excluded)
SETS: dict[int, tuple[str, tuple[str, ...], list[tuple[int, bool, bool, bool]]]] = {
    0: ("gi bleed", ("ConditionOccurrence", "ConditionEra"), [(192671, True, False, False)]),
    1: ("osteoarthritis", ("ConditionOccurrence", "ConditionEra"), [(80180, True, True, False)]),
    2: ("viral sinusitis", ("ConditionOccurrence", "ConditionEra"), [(40481087, False, False, False)]),
    3: ("pharyngitis or bronchitis", ("ConditionOccurrence",), [(4112343, False, False, False), (260139, True, False, False)]),
    4: ("nsaids not diclofenac", ("DrugExposure", "DrugEra"),
        [(1118084, True, False, False), (1124300, True, False, False), (1124300, True, False, True)]),
    5: ("acetaminophen", ("DrugExposure", "DrugEra"), [(1127433, True, False, False)]),
    6: ("diclofenac", ("DrugExposure", "DrugEra"), [(1124300, True, False, False)]),
    7: ("oral temperature", ("Measurement",), [(3006322, False, False, False)]),
    8: ("immunotherapy", ("ProcedureOccurrence",), [(4107731, False, False, False), (4043071, False, False, False)]),
    9: ("allergies", ("Observation",), [(4304110, False, False, False), (439406, False, False, False)]),
    10: ("inpatient", ("VisitOccurrence",), [(9201, False, False, False)]),
}
# (VisitOccurrence too in Follicle; circepy 0.3.0 adjusts a visit's START_DATE from its end date)
ADJUSTABLE = {"ConditionOccurrence", "DrugExposure", "Measurement", "ConditionEra", "DrugEra"}
VISITED = {"ConditionOccurrence", "DrugExposure", "Measurement", "ProcedureOccurrence", "Observation", "VisitOccurrence"}


def _concept_sets() -> list[dict[str, Any]]:
    return [{"id": i, "name": name, "expression": {"items": [
        {"concept": {"CONCEPT_ID": c}, "includeDescendants": d, "includeMapped": mp, "isExcluded": ex}
        for c, d, mp, ex in items]}} for i, (name, _, items) in SETS.items()]


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def criterion(self, *, allow_corr: bool = True) -> dict[str, Any]:
        r = self.r
        if self.chance(0.08):
            body: dict[str, Any] = {}
            if self.chance(0.5):
                body["PeriodLength"] = {"Value": r.choice([365, 1000, 3650]), "Op": r.choice(["gte", "lt"])}
            if self.chance(0.3):
                body["First"] = True
            return {"ObservationPeriod": body}
        cs = r.choice(list(SETS))
        domain = r.choice(SETS[cs][1])
        body = {"CodesetId": cs}
        if self.chance(0.3):
            body["First"] = True
        if self.chance(0.1):
            body["AgeAtStart" if domain.endswith("Era") else "Age"] = self.numeric(18, 70)
        if self.chance(0.15):
            body["Gender"] = [{"CONCEPT_ID": r.choice([8507, 8532])}]
        if self.chance(0.15):
            key = "EraStartDate" if domain.endswith("Era") else "OccurrenceStartDate"
            body[key] = self.dates()
        if domain in ADJUSTABLE and self.chance(0.15):
            body["DateAdjustment"] = {"StartWith": r.choice(["START_DATE", "END_DATE"]), "StartOffset": r.randint(-10, 10),
                                      "EndWith": "END_DATE", "EndOffset": r.randint(0, 30)}
        if domain == "VisitOccurrence" and self.chance(0.3):
            body["VisitLength"] = self.numeric(0, 5)
        if domain.endswith("Era") and self.chance(0.3):
            body["EraLength"] = self.numeric(0, 60)
        if allow_corr and self.chance(0.15):
            body["CorrelatedCriteria"] = self.group(depth=2)
        return {domain: body}

    def numeric(self, lo: int, hi: int) -> dict[str, Any]:
        op = self.r.choice(["lt", "lte", "eq", "gt", "gte", "bt", "!bt"])
        a = self.r.randint(lo, hi)
        return {"Value": a, "Op": op, "Extent": a + self.r.randint(0, 20)} if op.endswith("bt") else {"Value": a, "Op": op}

    def dates(self) -> dict[str, Any]:
        y = self.r.randint(1960, 2015)
        op = self.r.choice(["lt", "gt", "bt"])
        d = {"Value": f"{y}-01-01", "Op": op}
        if op == "bt":
            d["Extent"] = f"{y + self.r.randint(1, 20)}-12-31"
        return d

    def endpoint(self) -> dict[str, Any]:
        e: dict[str, Any] = {"Coeff": self.r.choice([-1, 1])}
        if self.chance(0.75):
            e["Days"] = self.r.choice([0, 1, 7, 30, 90, 365])
        return e

    def window(self, end_window: bool) -> dict[str, Any]:
        w = {"Start": self.endpoint(), "End": self.endpoint()}
        if end_window or self.chance(0.4):
            w["UseEventEnd"] = self.chance(0.5)  # spelled out: circepy reads an absent one differently
        if self.chance(0.25):
            w["UseIndexEnd"] = True
        return w

    def correlated(self, depth: int) -> dict[str, Any]:
        crit = self.criterion(allow_corr=depth > 0)
        cc: dict[str, Any] = {"Criteria": crit, "StartWindow": self.window(False)}
        if self.chance(0.25):
            cc["EndWindow"] = self.window(True)
        if next(iter(crit)) in VISITED and self.chance(0.1):
            cc["RestrictVisit"] = True
        if self.chance(0.2):
            cc["IgnoreObservationPeriod"] = True
        if self.chance(0.5):
            occ: dict[str, Any] = {"Type": 2, "Count": 1}
        else:
            occ = {"Type": self.r.choice([0, 1, 2]), "Count": self.r.choice([0, 1, 2, 3])}
        if self.chance(0.25):
            # distinct by the domain concept (the default) is checked on circe-be's own data sets
            # (test_atlas_circe_be.py): circepy 0.3.0 writes SQL that does not run for it
            occ["IsDistinct"] = True
            occ["CountColumn"] = self.r.choice(["START_DATE", "VISIT_ID"])
        cc["Occurrence"] = occ
        return cc

    def group(self, depth: int) -> dict[str, Any]:
        r = self.r
        kind = r.choice(["ALL", "ANY", "ANY", "AT_LEAST", "AT_MOST"])
        g: dict[str, Any] = {"Type": kind, "CriteriaList": [self.correlated(depth - 1) for _ in range(r.randint(0, 2))],
                             "DemographicCriteriaList": [], "Groups": []}
        if kind.startswith("AT_"):
            g["Count"] = r.randint(0, 2)
        if self.chance(0.3):
            demo: dict[str, Any] = {}
            if self.chance(0.6):
                demo["Age"] = self.numeric(20, 80)
            if self.chance(0.5):
                demo["Gender"] = [{"CONCEPT_ID": r.choice([8507, 8532])}]
            if self.chance(0.2):
                demo["OccurrenceStartDate"] = self.dates()
            g["DemographicCriteriaList"].append(demo)
        if depth > 1 and self.chance(0.3):
            g["Groups"].append(self.group(depth - 1))
        if not (g["CriteriaList"] or g["DemographicCriteriaList"] or g["Groups"]):
            g["CriteriaList"].append(self.correlated(depth - 1))
        return g

    def definition(self) -> dict[str, Any]:
        r = self.r
        d: dict[str, Any] = {
            "ConceptSets": _concept_sets(),
            "PrimaryCriteria": {
                "CriteriaList": [self.criterion(allow_corr=True) for _ in range(r.randint(1, 2))],
                "ObservationWindow": {"PriorDays": r.choice([0, 0, 30, 365]), "PostDays": r.choice([0, 0, 30])},
                "PrimaryCriteriaLimit": {"Type": r.choice(["First", "Last", "All"])},
            },
            "QualifiedLimit": {"Type": r.choice(["First", "Last", "All"])},
            "ExpressionLimit": {"Type": r.choice(["First", "Last", "All"])},
            "InclusionRules": [{"name": f"rule {i}", "expression": self.group(depth=2)} for i in range(r.choice([0, 1, 1, 2, 3]))],
            "CensoringCriteria": [self.criterion(allow_corr=False) for _ in range(r.choice([0, 0, 1]))],
            "CollapseSettings": {"CollapseType": "ERA", "EraPad": r.choice([0, 0, 30])},
            "CensorWindow": {},
        }
        if self.chance(0.4):
            d["AdditionalCriteria"] = self.group(depth=2)
        end = r.choice(["none", "offset", "era"])
        if end == "offset":
            d["EndStrategy"] = {"DateOffset": {"DateField": r.choice(["StartDate", "EndDate"]), "Offset": r.choice([0, 7, 30, 365])}}
        elif end == "era":
            d["EndStrategy"] = {"CustomEra": {"DrugCodesetId": r.choice([4, 5, 6]), "GapDays": r.choice([0, 30]),
                                              "Offset": r.choice([0, 7])}}
        if self.chance(0.2):
            d["CensorWindow"] = {"StartDate": "1990-01-01", "EndDate": "2015-12-31"}
        return d


def random_definition(seed: int) -> dict[str, Any]:
    """A random Circe definition (the same for the same seed)."""
    return _Gen(seed).definition()
