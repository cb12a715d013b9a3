"""Patient facts -> a sourced decision: do not start / start with cautions / start.

Pure functions over :class:`PatientFacts` and the knowledge base: no I/O. Every reason names the
rule, its source, its verification status and the date it was checked. Facts that are not known
are never taken as normal: a rule that needs an unknown fact is listed under ``not_assessed``
(or ``missing_screening`` for screening rules), and the decision is then at best
"start-with-cautions".
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel

from follicle.cds.facts import LabValue, PatientFacts
from follicle.cds.kb import DISCLAIMER, SEVERITY, KnowledgeBase, Rule, Source, default_kb
from follicle.cds.schedule import Schedule, build_schedule
from follicle.cds.units import CANONICAL_UNITS
from follicle.errors import InputError

Mode = Literal["start", "on_treatment"]
DecisionValue = Literal["do-not-start", "start-with-cautions", "start"]


class Reason(BaseModel):
    """A rule that applies to this patient, with what was seen and where the rule comes from."""

    rule_id: str
    kind: str
    action: str
    severity: str
    message: str
    observed: str | None = None
    threshold: str | None = None
    source: Source
    also: list[Source] = []
    status: str
    flag: str
    basis: str
    checked: date
    note: str | None = None


class NotAssessed(BaseModel):
    """A fact the record does not give, and the rules that need it."""

    fact: str
    rule_ids: list[str]


class DoseAdvice(BaseModel):
    """The sourced dose and any step-down that applies."""

    mg: float
    frequency: str
    alternative_mg: float | None = None
    text: str
    base: Reason
    adjustments: list[Reason] = []


class Decision(BaseModel):
    """Everything the engine says about one drug for one patient."""

    drug: str
    mode: Mode
    as_of: date
    decision: DecisionValue
    approved_for_aa: bool
    reasons: list[Reason]
    dose: DoseAdvice | None
    missing_screening: list[Reason]
    not_assessed: list[NotAssessed]
    advice: list[Reason]
    schedule: Schedule | None = None
    partially_verified_rules: list[str]
    disclaimer: str = DISCLAIMER


def _reason(rule: Rule, action: str, observed: str | None = None, threshold: str | None = None) -> Reason:
    # built from an already validated rule: skip re-validation (hot path of the service)
    return Reason.model_construct(
        rule_id=rule.id, kind=rule.kind, action=action, severity=SEVERITY[action], message=rule.message,
        observed=observed, threshold=threshold, source=rule.source, also=list(rule.also), status=rule.status,
        flag=rule.flag, basis=rule.basis, checked=rule.checked, note=rule.note,
    )


def _fmt(x: float) -> str:
    return f"{x:g}"


def _threshold_text(rule: Rule) -> str | None:
    t, c = rule.threshold, rule.condition
    if t is None or c is None:
        return None
    if c.op == "between":
        return f"{_fmt(t.low)} <= x < {_fmt(t.high)} {t.unit}"  # type: ignore[arg-type]
    return f"{c.op} {_fmt(t.value)} {t.unit}"  # type: ignore[arg-type]


def _observed(facts: PatientFacts, fact: str) -> str:
    v = getattr(facts, fact)
    if isinstance(v, LabValue):
        when = f" on {v.date.isoformat()}" if v.date else ""
        return f"{fact} {_fmt(v.value)} {v.unit}{when}"
    if isinstance(v, list):
        return f"{fact}: " + ", ".join(getattr(x, "name", str(x)) for x in v)
    return f"{fact}: {v}"


def _compare(x: float, op: str, rule: Rule) -> bool:
    t = rule.threshold_in(CANONICAL_UNITS[rule.condition.facts[0]])  # type: ignore[union-attr]
    if op == "between":
        return t.low <= x < t.high  # type: ignore[operator]
    v = t.value
    return {"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[op]  # type: ignore[operator]


def _concomitant_hits(facts: PatientFacts, values: list, drug: str) -> list[str]:
    hits = []
    for med in facts.concomitant or []:
        if med.name == drug:
            continue  # the drug being ordered is not its own co-medication
        for want in values:
            if (want.startswith("class:") and want[6:] in med.classes) or want == med.name:
                hits.append(med.name)
                break
    return hits


def evaluate_rule(rule: Rule, facts: PatientFacts, drug: str) -> bool | None:
    """True if the rule fires, False if not, None if a needed fact is unknown (or not applicable)."""
    c = rule.condition
    if c is None:
        return True
    if c.when:
        for k, want in c.when.items():
            got = getattr(facts, k)
            if got is not None and got != want:
                return False
    if c.op == "known":
        return any(getattr(facts, f) is None for f in c.facts)  # "fires" = something is missing
    if c.op in {"<", "<=", ">", ">=", "between"}:
        x = facts.value_of(c.facts[0])
        return None if x is None else _compare(float(x), c.op, rule)  # type: ignore[arg-type]
    if c.fact == "concomitant":
        if facts.concomitant is None:
            return None
        return bool(_concomitant_hits(facts, c.values or [], drug))
    vals = [facts.value_of(f) for f in c.facts]
    if c.op == "any_of":
        v = vals[0]
        return None if v is None else bool(set(v) & set(c.values or []))  # type: ignore[arg-type]
    # "in" / "is": fires if any known fact matches; unknown if none matches and one is unknown
    if any(v is not None and v in (c.values or []) for v in vals):
        return True
    return None if any(v is None for v in vals) else False


def _observed_for(rule: Rule, facts: PatientFacts, drug: str) -> str | None:
    c = rule.condition
    if c is None:
        return None
    if c.fact == "concomitant":
        return "concomitant: " + ", ".join(_concomitant_hits(facts, c.values or [], drug))
    return "; ".join(_observed(facts, f) for f in c.facts if getattr(facts, f) is not None) or None


def _dose(rules: list[Rule], fired: list[Rule]) -> DoseAdvice | None:
    base = next((r for r in rules if r.kind == "dose"), None)
    if base is None or base.dose is None:
        return None
    d = base.dose
    adjustments = [r for r in fired if r.kind == "dose_adjustment"]

    def adjusted(mg: float | None) -> float | None:
        # each step-down applied to the sourced dose, the lowest kept: sources give no compounding
        if mg is None:
            return None
        return min([mg] + [r.dose_map.get(_fmt(mg), mg) for r in adjustments])  # type: ignore[union-attr]

    mg, alt = adjusted(d.mg), adjusted(d.alternative_mg)
    text = f"{_fmt(mg)} mg {d.frequency}"  # type: ignore[arg-type]
    if alt is not None and alt != mg:
        text += f" (or {_fmt(alt)} mg {d.frequency} where the label allows it)"
    if adjustments:
        text += " after step-down: " + "; ".join(r.id for r in adjustments)
    return DoseAdvice(
        mg=mg, frequency=d.frequency, alternative_mg=alt, text=text,  # type: ignore[arg-type]
        base=_reason(base, "info"),
        adjustments=[_reason(r, r.action, threshold=_threshold_text(r)) for r in adjustments],
    )


def evaluate(
    facts: PatientFacts,
    drug: str,
    *,
    mode: Mode = "start",
    start: date | None = None,
    kb: KnowledgeBase | None = None,
    horizon_months: int = 12,
) -> Decision:
    """Apply every rule for *drug* to *facts*.

    Decision support for a JAK inhibitor from sourced rules (label and section for each); it
    supports, and does not replace, the clinician's judgement.

    Parameters
    ----------
    facts : PatientFacts
        The patient's facts on ``facts.as_of`` (see :func:`follicle.cds.fhir.parse_bundle`).
    drug : str
        Ingredient name (see ``drugs.yaml``); must have rules in the knowledge base.
    mode : {"start", "on_treatment"}
        Before the first dose, or during treatment.
    start : datetime.date, optional
        Treatment start date; when given, a monitoring schedule is added.
    kb : KnowledgeBase, optional
        The rules (default: the bundled knowledge base).
    horizon_months : int
        Length of the monitoring schedule.

    Returns
    -------
    Decision
        ``decision`` (start, start-with-cautions, do-not-start), the reasons with their sources,
        dose, missing screening, facts not assessed and the schedule.
    """
    kb = kb or default_kb()
    drug = drug.strip().lower()
    entry = kb.drug(drug)
    if entry is None or drug not in kb.drugs_with_rules:
        raise InputError(
            f"drug: no sourced rules for {drug!r} in the knowledge base",
            problems=[f"drugs with rules: {', '.join(kb.drugs_with_rules)}"],
        )
    phases = {"start", "both"} if mode == "start" else {"on_treatment", "both"}
    rules = [r for r in kb.for_drug(drug) if r.phase in phases or r.kind in {"dose", "monitoring"}]
    reasons: list[Reason] = []
    missing: list[Reason] = []
    advice: list[Reason] = []
    fired: list[Rule] = []
    unknown: dict[str, list[str]] = {}
    for rule in rules:
        if rule.kind in {"dose", "monitoring"}:
            continue
        if rule.kind == "advice":
            advice.append(_reason(rule, rule.action))
            continue
        result = evaluate_rule(rule, facts, drug)
        if rule.kind == "screening":
            if result and mode == "start":
                missing.append(_reason(rule, "info"))
            continue
        if result is None:
            for f in rule.condition.facts:  # type: ignore[union-attr]
                if getattr(facts, f) is None:
                    unknown.setdefault(f, []).append(rule.id)
            continue
        if result:
            fired.append(rule)
            action = rule.on_treatment_action if (mode == "on_treatment" and rule.on_treatment_action) else rule.action
            reasons.append(_reason(rule, action, _observed_for(rule, facts, drug), _threshold_text(rule)))
    screened = {f for r in rules if r.kind == "screening" for f in r.condition.facts}  # type: ignore[union-attr]
    not_assessed = [NotAssessed(fact=f, rule_ids=ids) for f, ids in unknown.items() if f not in screened or mode != "start"]
    blocking = {"do_not_start", "discontinue"} if mode == "start" else {"do_not_start", "discontinue", "interrupt"}
    if any(r.action in blocking for r in reasons):
        value: DecisionValue = "do-not-start"
    elif reasons or missing or not_assessed or not entry.approved_for_aa:
        value = "start-with-cautions"
    else:
        value = "start"
    order = {"critical": 0, "warning": 1, "info": 2}
    reasons.sort(key=lambda r: order[r.severity])
    schedule = build_schedule(kb, drug, start, as_of=facts.as_of, history=facts.lab_history(), horizon_months=horizon_months) if start else None
    dose = _dose(rules, fired)
    shown = reasons + missing + advice + (dose.adjustments if dose else [])
    partial = sorted({r.rule_id for r in shown if r.status == "P"})
    return Decision(
        drug=drug, mode=mode, as_of=facts.as_of, decision=value, approved_for_aa=entry.approved_for_aa,
        reasons=reasons, dose=dose, missing_screening=missing, not_assessed=not_assessed,
        advice=advice, schedule=schedule, partially_verified_rules=partial,
    )
