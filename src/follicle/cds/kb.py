"""The knowledge base: sourced rules as pydantic data, loaded and validated from ``cds/kb/*.yaml``.

Each rule names the label it encodes (EU SmPC or US prescribing information: ``region``), the
section, and for a verified label rule the sentence it encodes (``quote``). Status tags:
``V`` a label statement quoted with its section from a copy of that label; ``P`` partly verified
(a secondary source, another country's label text, or a summary); ``G`` practice guidance (not a
label). Unverified facts are not admitted. ``labels.yaml`` lists, per drug and region, which
label is encoded (a drug whose label is not encoded is refused) and the label points that are
**not encoded: source not available**. The loader checks every rule at once and reports all
problems together.
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


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML loader that refuses a key given twice in one mapping (the second would silently win)."""


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)

DISCLAIMER = "This supports, and does not replace, the clinician's judgement."

Region = Literal["EU", "US"]
REGIONS: tuple[Region, ...] = ("EU", "US")
REGION_LABEL = {"EU": "EU SmPC", "US": "US prescribing information"}

Kind = Literal[
    "lab_threshold", "age", "renal", "hepatic", "status", "flag", "concomitant",
    "dose", "dose_adjustment", "screening", "monitoring", "advice",
]
Action = Literal["do_not_start", "discontinue", "interrupt", "reduce_dose", "cannot_decide", "restrict", "caution", "info"]
Phase = Literal["start", "on_treatment", "both"]
Op = Literal["<", "<=", ">", ">=", "between", "in", "is", "any_of", "known"]

#: Facts a rule may test, with the kind of value each holds (see :mod:`follicle.cds.facts`).
NUMERIC_FACTS = {"age_years", "egfr", "crcl", "lymphocytes", "neutrophils", "haemoglobin", "platelets"}
LAB_FACTS = {"egfr", "lymphocytes", "neutrophils", "haemoglobin", "platelets", "liver_enzymes", "lipids"}
OTHER_FACTS = {
    "sex", "pregnant", "lactating", "hepatic_class", "tb_status", "hbv_status", "hcv_status",
    "active_infection", "vte_risk_factors", "malignancy_history", "zoster_vaccinated",
    "immunizations_up_to_date", "cyp2c9_poor_metabolizer", "esrd_or_renal_transplant", "concomitant",
    "smoking", "cv_risk",
}
KNOWN_FACTS = NUMERIC_FACTS | LAB_FACTS | OTHER_FACTS
SEVERITY = {
    "do_not_start": "critical", "discontinue": "critical", "interrupt": "warning",
    "reduce_dose": "warning", "cannot_decide": "warning", "restrict": "warning", "caution": "warning", "info": "info",
}
#: Actions whose rule, when its fact is unknown, leaves the decision open ("cannot decide: need X").
SAFETY_ACTIONS = {"do_not_start", "discontinue", "interrupt", "reduce_dose", "cannot_decide"}


class Source(BaseModel):
    """Where a rule comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    url: HttpUrl


class Threshold(BaseModel):
    """A number (or a range ``low <= x < high``; ``<= high`` with ``high_inclusive``) in the unit the source uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float | None = None
    low: float | None = None
    high: float | None = None
    high_inclusive: bool = False
    unit: str


class Condition(BaseModel):
    """The fact(s) a rule tests and how; ``when`` restricts it (e.g. ``{sex: female}``).

    ``unknown_values`` are values that leave the rule undecided (e.g. a positive TB test not yet
    evaluated leaves "active TB" open).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    fact: str | list[str]
    op: Op
    values: list[Any] | None = None
    unknown_values: list[Any] | None = None
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
    regions: tuple[Region, ...] = Field(alias="region")
    topic: str
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
    section: str | None = None
    quote: str | None = None
    also: tuple[Source, ...] = ()
    status: Literal["V", "P", "G"]
    basis: Literal["label", "practice"]
    checked: date
    note: str | None = None
    _converted: dict[str, Threshold] = PrivateAttr(default_factory=dict)

    @field_validator("drugs", "regions", mode="before")
    @classmethod
    def _as_tuple(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @property
    def severity(self) -> str:
        return SEVERITY[self.action]

    @property
    def flag(self) -> str:
        """Text shown next to the rule: the status in words."""
        return STATUS_FLAG[self.status]

    @property
    def label_name(self) -> str:
        """Which label(s) the rule encodes, in words."""
        return " and ".join(REGION_LABEL[r] for r in self.regions)

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


STATUS_FLAG = {"V": "verified label text", "P": "PARTIALLY VERIFIED", "G": "practice guidance (not a label statement)"}


class NotEncoded(BaseModel):
    """A label point that is not encoded because its text could not be sourced."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str
    reason: str = "source not available"


class LabelEntry(BaseModel):
    """One drug's label in one region: encoded (with version) or refused (with the reason)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drug: str
    region: Region
    document: str
    encoded: bool
    version: str | None = None
    sections: str | None = None
    reason: str | None = None
    url: HttpUrl | None = None
    not_encoded: tuple[NotEncoded, ...] = ()

    @model_validator(mode="after")
    def _reason_if_refused(self) -> LabelEntry:
        if not self.encoded and not self.reason:
            raise ValueError(f"{self.drug} {self.region}: a label that is not encoded needs a reason")
        return self


class DrugEntry(BaseModel):
    """A drug the service recognises in a MedicationRequest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    rxcui: str | None = None
    rxcui_status: Literal["V", "P"] | None = None
    rxcui_source: str | None = None
    class_source: str | None = None
    omop_concept_id: int | None = None
    names: tuple[str, ...]
    topical_names: tuple[str, ...] = ()
    cvx: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    approved_for_aa: bool
    note: str | None = None
    source: Source | None = None


class KnowledgeBase(BaseModel):
    """All rules and the drug catalogue."""

    model_config = ConfigDict(frozen=True)
    rules: tuple[Rule, ...]
    drugs: tuple[DrugEntry, ...]
    labels: tuple[LabelEntry, ...] = ()
    sources: dict[str, Source] = Field(default_factory=dict)

    def for_drug(self, drug: str, *, kinds: set[str] | None = None, region: str | None = None) -> list[Rule]:
        rules = [r for r in self._by_drug.get(drug, []) if region is None or region in r.regions]
        return rules if kinds is None else [r for r in rules if r.kind in kinds]

    def label(self, drug: str, region: str) -> LabelEntry | None:
        return next((x for x in self.labels if x.drug == drug and x.region == region), None)

    @functools.cached_property
    def _by_drug(self) -> dict[str, list[Rule]]:
        out: dict[str, list[Rule]] = {}
        for r in self.rules:
            for d in r.drugs:
                out.setdefault(d, []).append(r)
        return out

    def drug(self, name: str) -> DrugEntry | None:
        return next((d for d in self.drugs if d.name == name), None)

    def encoded_drugs(self, region: str) -> list[str]:
        """Drugs whose label for *region* is encoded."""
        return [x.drug for x in self.labels if x.region == region and x.encoded]


def _check_rule(rule: Rule) -> list[str]:
    """Cross-field checks for one rule; returns problems (empty if fine)."""
    p: list[str] = []
    if rule.status == "V" and (rule.basis != "label" or not rule.section or not rule.quote):
        p.append(f"{rule.id}: status V needs basis 'label', a section and the quoted label sentence")
    if (rule.status == "G") != (rule.basis == "practice"):
        p.append(f"{rule.id}: practice guidance is tagged G, and only practice guidance is")
    if rule.basis == "label" and not rule.section:
        p.append(f"{rule.id}: a label rule names its section")
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
    labels: list[LabelEntry] = []
    sources: dict[str, Source] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(), Loader=_Loader) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        for key, raw in (data.get("sources") or {}).items():
            try:
                sources[str(raw["url"])] = Source.model_validate(raw)
            except (ValidationError, KeyError, TypeError) as exc:
                problems.append(f"{path.name} source {key}: {exc}")
        for i, raw in enumerate(data.get("labels", [])):
            try:
                labels.append(LabelEntry.model_validate(raw))
            except ValidationError as exc:
                problems += [f"{path.name} label {i}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
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
        for d in r.drugs if r.basis == "label" else ():
            for reg in r.regions:
                lab = next((x for x in labels if x.drug == d and x.region == reg), None)
                if labels and (lab is None or not lab.encoded):
                    problems.append(f"{r.id}: no encoded {reg} label for {d} in labels.yaml")
    if problems:
        raise SpecError(f"invalid CDS knowledge base in {directory}", problems=problems)
    return KnowledgeBase(rules=tuple(rules), drugs=tuple(drugs), labels=tuple(labels), sources=sources)


@functools.lru_cache(maxsize=1)
def default_kb() -> KnowledgeBase:
    """The bundled knowledge base, loaded once."""
    return load_kb()
