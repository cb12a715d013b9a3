"""The knowledge base: sourced rules as pydantic data, loaded and validated from ``cds/kb/*.yaml``.

Each rule carries its source (label and URL), its verification status (``V`` verified, ``P``
partly verified; unverified facts are not admitted) and the date it was checked. The loader
checks every rule at once and reports all problems together.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, PrivateAttr, ValidationError, field_validator, model_validator

from follicle.cds.units import CANONICAL_UNITS, convert
from follicle.errors import SpecError

KB_DIR = Path(__file__).parent / "kb"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DISCLAIMER = "This supports, and does not replace, the clinician's judgement."

Kind = Literal[
    "lab_threshold", "age", "renal", "hepatic", "status", "flag", "concomitant",
    "dose", "dose_adjustment", "screening", "monitoring", "advice",
]
Action = Literal["do_not_start", "discontinue", "interrupt", "reduce_dose", "caution", "info"]
Phase = Literal["start", "on_treatment", "both"]
Op = Literal["<", "<=", ">", ">=", "between", "in", "is", "any_of", "known"]

#: Facts a rule may test, with the kind of value each holds (see :mod:`follicle.cds.facts`).
NUMERIC_FACTS = {"age_years", "egfr", "lymphocytes", "neutrophils", "haemoglobin", "platelets"}
LAB_FACTS = {"egfr", "lymphocytes", "neutrophils", "haemoglobin", "platelets", "liver_enzymes", "lipids"}
OTHER_FACTS = {
    "sex", "pregnant", "lactating", "hepatic_class", "tb_status", "hbv_status", "hcv_status",
    "active_infection", "vte_risk_factors", "malignancy_history", "zoster_vaccinated",
    "immunizations_up_to_date", "cyp2c9_poor_metabolizer", "esrd_or_renal_transplant", "concomitant",
}
KNOWN_FACTS = NUMERIC_FACTS | LAB_FACTS | OTHER_FACTS
SEVERITY = {
    "do_not_start": "critical", "discontinue": "critical", "interrupt": "warning",
    "reduce_dose": "warning", "caution": "warning", "info": "info",
}


class Source(BaseModel):
    """Where a rule comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    url: HttpUrl


class Threshold(BaseModel):
    """A number (or a half-open range ``low <= x < high``) in the unit the source uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float | None = None
    low: float | None = None
    high: float | None = None
    unit: str


class Condition(BaseModel):
    """The fact(s) a rule tests and how; ``when`` restricts it (e.g. ``{sex: female}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fact: str | list[str]
    op: Op
    values: list[Any] | None = None
    when: dict[str, Any] | None = None

    @property
    def facts(self) -> list[str]:
        return [self.fact] if isinstance(self.fact, str) else list(self.fact)


class Dose(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mg: float
    frequency: str
    alternative_mg: float | None = None


class Task(BaseModel):
    """A monitoring task: at baseline, at a week, in a window of weeks, or every N months."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    analytes: list[str]
    label: str
    at: Literal["baseline"] | None = None
    at_weeks: int | None = None
    window_weeks: tuple[int, int] | None = None
    every_months: int | None = None

    @model_validator(mode="after")
    def _one_timing(self) -> Task:
        given = [x is not None for x in (self.at, self.at_weeks, self.window_weeks, self.every_months)]
        if sum(given) != 1:
            raise ValueError("a task needs exactly one of at, at_weeks, window_weeks, every_months")
        return self


class Rule(BaseModel):
    """One sourced rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    drugs: tuple[str, ...] = Field(alias="drug")
    kind: Kind
    phase: Phase
    condition: Condition | None = None
    threshold: Threshold | None = None
    dose: Dose | None = None
    dose_map: dict[str, float] | None = None
    task: Task | None = None
    action: Action
    on_treatment_action: Action | None = None
    message: str
    source: Source
    also: tuple[Source, ...] = ()
    status: Literal["V", "P"]
    basis: Literal["label", "practice"]
    checked: date
    note: str | None = None
    _converted: dict[str, Threshold] = PrivateAttr(default_factory=dict)

    @field_validator("drugs", mode="before")
    @classmethod
    def _as_tuple(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @property
    def severity(self) -> str:
        return SEVERITY[self.action]

    @property
    def flag(self) -> str:
        """Text shown next to the rule: the status in words."""
        return "verified" if self.status == "V" else "PARTIALLY VERIFIED"

    def threshold_in(self, unit: str) -> Threshold:
        """The threshold converted to *unit* (the canonical unit of the fact); cached per rule."""
        hit = self._converted.get(unit)
        if hit is None:
            hit = self._converted[unit] = self._threshold_in(unit)
        return hit

    def _threshold_in(self, unit: str) -> Threshold:
        t = self.threshold
        assert t is not None
        conv = [None if x is None else convert(x, t.unit, unit, analyte=self.condition.facts[0]) for x in (t.value, t.low, t.high)]  # type: ignore[union-attr]
        return Threshold(value=conv[0], low=conv[1], high=conv[2], unit=unit)


class DrugEntry(BaseModel):
    """A drug the service recognises in a MedicationRequest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    rxcui: str | None = None
    rxcui_status: Literal["V", "P"] | None = None
    omop_concept_id: int | None = None
    names: tuple[str, ...]
    topical_names: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    approved_for_aa: bool
    note: str | None = None
    source: Source | None = None


class KnowledgeBase(BaseModel):
    """All rules and the drug catalogue."""

    model_config = ConfigDict(frozen=True)
    rules: tuple[Rule, ...]
    drugs: tuple[DrugEntry, ...]

    def for_drug(self, drug: str, *, kinds: set[str] | None = None) -> list[Rule]:
        rules = self._by_drug.get(drug, [])
        return list(rules) if kinds is None else [r for r in rules if r.kind in kinds]

    @functools.cached_property
    def _by_drug(self) -> dict[str, list[Rule]]:
        out: dict[str, list[Rule]] = {}
        for r in self.rules:
            for d in r.drugs:
                out.setdefault(d, []).append(r)
        return out

    def drug(self, name: str) -> DrugEntry | None:
        return next((d for d in self.drugs if d.name == name), None)

    @functools.cached_property
    def drugs_with_rules(self) -> list[str]:
        names = {d for r in self.rules for d in r.drugs}
        return [d.name for d in self.drugs if d.name in names]


def _check_rule(rule: Rule) -> list[str]:
    """Cross-field checks for one rule; returns problems (empty if fine)."""
    p: list[str] = []
    c = rule.condition
    needs_condition = rule.kind not in {"dose", "monitoring", "advice"}
    if needs_condition and c is None:
        p.append(f"{rule.id}: kind {rule.kind!r} needs a condition")
    if c is not None:
        for f in c.facts:
            if f not in KNOWN_FACTS:
                p.append(f"{rule.id}: condition.fact {f!r} is not a known fact")
        numeric = c.op in {"<", "<=", ">", ">=", "between"}
        if numeric:
            if rule.threshold is None:
                p.append(f"{rule.id}: op {c.op!r} needs a threshold with a unit")
            elif c.facts[0] not in NUMERIC_FACTS:
                p.append(f"{rule.id}: op {c.op!r} on non-numeric fact {c.facts[0]!r}")
            else:
                t = rule.threshold
                if c.op == "between" and (t.low is None or t.high is None or t.low >= t.high):
                    p.append(f"{rule.id}: 'between' needs low < high, got {t.low}, {t.high}")
                if c.op != "between" and t.value is None:
                    p.append(f"{rule.id}: op {c.op!r} needs threshold.value")
                try:
                    rule.threshold_in(CANONICAL_UNITS[c.facts[0]])
                except (ValueError, KeyError) as exc:
                    p.append(f"{rule.id}: threshold unit {t.unit!r} cannot be used for {c.facts[0]}: {exc}")
        elif rule.threshold is not None:
            p.append(f"{rule.id}: threshold given but op {c.op!r} is not numeric")
        if c.op in {"in", "is", "any_of"} and not c.values:
            p.append(f"{rule.id}: op {c.op!r} needs values")
    if rule.kind == "dose" and rule.dose is None:
        p.append(f"{rule.id}: kind 'dose' needs dose")
    if rule.kind == "dose_adjustment" and not rule.dose_map:
        p.append(f"{rule.id}: kind 'dose_adjustment' needs dose_map")
    if rule.kind == "monitoring":
        if rule.task is None:
            p.append(f"{rule.id}: kind 'monitoring' needs task")
        else:
            for a in rule.task.analytes:
                if a not in LAB_FACTS:
                    p.append(f"{rule.id}: task analyte {a!r} is not a lab fact")
    return p


def load_kb(directory: Path = KB_DIR) -> KnowledgeBase:
    """Read and validate every YAML file in *directory*; raise SpecError listing all problems."""
    problems: list[str] = []
    rules: list[Rule] = []
    drugs: list[DrugEntry] = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.load(path.read_text(), Loader=_Loader) or {}
        for i, raw in enumerate(data.get("rules", [])):
            try:
                rule = Rule.model_validate(raw)
            except ValidationError as exc:
                for e in exc.errors():
                    loc = ".".join(str(x) for x in e["loc"])
                    problems.append(f"{path.name} rule {i} ({raw.get('id', '?')}): {loc}: {e['msg']}")
                continue
            problems += [f"{path.name}: {m}" for m in _check_rule(rule)]
            rules.append(rule)
        for i, raw in enumerate(data.get("drugs", [])):
            try:
                drugs.append(DrugEntry.model_validate(raw))
            except ValidationError as exc:
                problems += [f"{path.name} drug {i}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    ids = [r.id for r in rules]
    problems += [f"duplicate rule id {i!r}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    known = {d.name for d in drugs}
    for r in rules:
        problems += [f"{r.id}: drug {d!r} is not in drugs.yaml" for d in r.drugs if d not in known]
    if problems:
        raise SpecError(f"invalid CDS knowledge base in {directory}", problems=problems)
    return KnowledgeBase(rules=tuple(rules), drugs=tuple(drugs))


@functools.lru_cache(maxsize=1)
def default_kb() -> KnowledgeBase:
    """The bundled knowledge base, loaded once."""
    return load_kb()
