"""Patient facts -> a sourced decision: do not start / cannot decide / start with cautions / start.

Pure functions over :class:`PatientFacts` and the knowledge base: no I/O. The rules applied are
those of one label, picked by ``region`` (``EU`` SmPC or ``US`` prescribing information); a drug
whose label for that region is not encoded is refused (:class:`LabelNotEncoded`). Every reason
names the rule, its label and section, the quoted sentence, its status and the date it was checked.

Facts that are not known are never taken as normal. Severity, in this order:

* a contraindication or a label "do not initiate" that fires gives **do-not-start**, whatever
  else is missing;
* otherwise, if a fact needed by a safety rule (do not start, discontinue, interrupt, dose
  step-down) is unknown, or a rule whose label text is not encoded fires (``cannot_decide``), the
  answer is **cannot-decide**, listing what is needed (``needs``): never "start";
* otherwise cautions, restrictions ("use only if no suitable alternative"), missing screening or
  unknown facts of caution rules give **start-with-cautions**; else **start**.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Literal

from pydantic import BaseModel

from follicle.cds.facts import LabValue, PatientFacts
from follicle.cds.kb import (
    DISCLAIMER, REGION_LABEL, REGIONS, SAFETY_ACTIONS, SEVERITY, KnowledgeBase, Rule, Source, default_kb,
)
from follicle.cds.schedule import Schedule, build_schedule
from follicle.cds.units import CANONICAL_UNITS
from follicle.errors import InputError

Mode = Literal["start", "on_treatment"]
Region = Literal["EU", "US"]
DecisionValue = Literal["do-not-start", "cannot-decide", "start-with-cautions", "start"]


class LabelNotEncoded(InputError):
    """The drug's label for the chosen region is not encoded: refused, never partly evaluated."""


class Reason(BaseModel):
    """A rule that applies to this patient, with what was seen and where the rule comes from."""

    rule_id: str
    topic: str
    label: str
    section: str | None = None
    quote: str | None = None
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
    safety: bool = False
    detail: str | None = None


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
    region: Region
    label: str
    label_version: str | None = None
    decision: DecisionValue
    needs: list[str] = []
    assumed: list[str] = []
    region_differences: list[str] = []
    not_encoded: list[str] = []
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
        rule_id=rule.id, topic=rule.topic, label=rule.label_name, section=rule.section, quote=rule.quote, kind=rule.kind, action=action, severity=SEVERITY[action], message=rule.message,
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
        return f"{_fmt(t.low)} <= x {'<=' if t.high_inclusive else '<'} {_fmt(t.high)} {t.unit}"  # type: ignore[arg-type]
    return f"{c.op} {_fmt(t.value)} {t.unit}"  # type: ignore[arg-type]


def _observed(facts: PatientFacts, fact: str) -> str:
    v = getattr(facts, fact)
    if isinstance(v, LabValue):
        when = f" on {v.date.isoformat()}" if v.date else ""
        return f"{fact} {v.comparator or ''}{_fmt(v.value)} {v.unit}{when}"
    if isinstance(v, list):
        return f"{fact}: " + ", ".join(getattr(x, "name", str(x)) for x in v)
    return f"{fact}: {v}"


def _compare(x: float, op: str, rule: Rule) -> bool:
    t = rule.threshold_in(CANONICAL_UNITS[rule.condition.facts[0]])  # type: ignore[union-attr]
    if op == "between":
        hi = rule.threshold.high_inclusive  # type: ignore[union-attr]
        return t.low <= x and (x <= t.high if hi else x < t.high)  # type: ignore[operator]
    v = t.value
    return {"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[op]  # type: ignore[operator]


#: an interval of values: (low, low included, high, high included)
_Interval = tuple[float, bool, float, bool]


def _as_interval(op: str, x: float, high: float | None = None, high_inclusive: bool = False) -> _Interval:
    if op == "between":
        return (x, True, high, high_inclusive)  # type: ignore[return-value]
    return {"<": (-math.inf, False, x, False), "<=": (-math.inf, False, x, True),
            ">": (x, False, math.inf, False), ">=": (x, True, math.inf, False)}[op]


def _inside(inner: _Interval, outer: _Interval) -> bool:
    lo = outer[0] < inner[0] or (outer[0] == inner[0] and (outer[1] or not inner[1]))
    hi = inner[2] < outer[2] or (inner[2] == outer[2] and (outer[3] or not inner[3]))
    return lo and hi


def _apart(a: _Interval, b: _Interval) -> bool:
    def below(p: _Interval, q: _Interval) -> bool:
        return p[2] < q[0] or (p[2] == q[0] and not (p[3] and q[1]))
    return below(a, b) or below(b, a)


def _compare_bound(v: LabValue, rule: Rule) -> bool | None:
    """A value reported as a bound (``< 0.5``): fires when every value within it fires the rule, does not
    when none does, and is left open when the bound straddles the threshold."""
    c = rule.condition
    t = rule.threshold_in(CANONICAL_UNITS[c.facts[0]])  # type: ignore[union-attr]
    fires = (_as_interval("between", t.low, t.high, rule.threshold.high_inclusive)  # type: ignore[arg-type, union-attr]
             if c.op == "between" else _as_interval(c.op, t.value))  # type: ignore[union-attr, arg-type]
    bound = _as_interval(v.comparator, v.value)  # type: ignore[arg-type]
    if _inside(bound, fires):
        return True
    return False if _apart(bound, fires) else None


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


#: values of a ``when`` fact that exclude no one: administrative gender "other" or "unknown" may be female
_OPEN_WHEN = ("other", "unknown")


def evaluate_rule(rule: Rule, facts: PatientFacts, drug: str) -> bool | None:
    """True if the rule fires, False if not, None if a needed fact is unknown (or not applicable).

    ``when`` narrows whom a rule asks about (no pregnancy question for a patient recorded as male); it
    never hides a finding the record holds (a recorded pregnancy fires whatever the administrative gender).
    """
    c = rule.condition
    if c is None:
        return True
    excluded = any(getattr(facts, k) is not None and getattr(facts, k) not in _OPEN_WHEN and getattr(facts, k) != want
                   for k, want in (c.when or {}).items())
    if excluded:
        return False if c.op == "known" else _evaluate_condition(rule, facts, drug) is True
    return _evaluate_condition(rule, facts, drug)


def _evaluate_condition(rule: Rule, facts: PatientFacts, drug: str) -> bool | None:
    c = rule.condition
    assert c is not None
    if c.op == "known":
        return any(getattr(facts, f) is None for f in c.facts)  # "fires" = something is missing
    if c.op in {"<", "<=", ">", ">=", "between"}:
        v = getattr(facts, c.facts[0])
        if isinstance(v, LabValue) and v.comparator is not None:
            return _compare_bound(v, rule)
        x = facts.value_of(c.facts[0])
        return None if x is None else _compare(float(x), c.op, rule)  # type: ignore[arg-type]
    if c.fact == "concomitant":
        if facts.concomitant is None:
            return None
        if _concomitant_hits(facts, c.values or [], drug):
            return True
        # a medication in the record that could not be identified may belong to the class
        return None if any(m.matched_by == "unidentified" for m in facts.concomitant) else False
    vals = [facts.value_of(f) for f in c.facts]
    if c.op == "any_of":
        v = vals[0]
        return None if v is None else bool(set(v) & set(c.values or []))  # type: ignore[arg-type]
    # "in" / "is": fires if any known fact matches; unknown if none matches and one is unknown
    # (or holds a value that leaves the rule open, e.g. a positive TB test not yet evaluated)
    if any(v is not None and _member(v, c.values or []) for v in vals):
        return True
    return None if any(v is None or _member(v, c.unknown_values or []) for v in vals) else False


def _member(v: object, values: list) -> bool:
    """``v in values`` without True == 1 confusions."""
    return any(type(v) is type(x) and v == x for x in values)


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


def _assume(facts: PatientFacts, rules: list[Rule]) -> tuple[PatientFacts, list[str]]:
    """Facts derived for this label, each stated: CrCl from eGFR where the label states CrCl."""
    assumed: list[str] = []
    uses_crcl = any(r.condition is not None and "crcl" in r.condition.facts for r in rules)
    if uses_crcl and facts.crcl is None and facts.egfr is not None:
        facts = facts.model_copy(update={"crcl": LabValue.model_construct(
            value=facts.egfr.value, unit="mL/min", date=facts.egfr.date, source_id=facts.egfr.source_id,
            comparator=facts.egfr.comparator)})
        assumed.append(f"creatinine clearance taken as the eGFR ({facts.egfr.comparator or ''}{_fmt(facts.egfr.value)} mL/min/1.73 m2): "
                       "the label states creatinine clearance; confirm if near a threshold")
    return facts, assumed


def _unknown_detail(rule: Rule, facts: PatientFacts, fact: str) -> str | None:
    v = getattr(facts, fact)
    if v is None:
        return None
    topic = rule.topic.replace("_", " ")
    if fact == "concomitant":
        ids = [m.source_id or m.name for m in v if m.matched_by == "unidentified"]
        return f"could not identify {', '.join(ids)}, which leaves {topic} open" if ids else None
    if isinstance(v, LabValue):
        return f"{_observed(facts, fact)}, which leaves {topic} open"
    return f"{fact} is {v!r}, which leaves {topic} open"


def evaluate(
    facts: PatientFacts,
    drug: str,
    *,
    region: Region = "EU",
    mode: Mode = "start",
    start: date | None = None,
    kb: KnowledgeBase | None = None,
    horizon_months: int = 12,
    compare: bool = True,
) -> Decision:
    """Apply every rule of *drug*'s *region* label to *facts*.

    Decision support for a JAK inhibitor from sourced rules (label and section for each); it
    supports, and does not replace, the clinician's judgement.

    Parameters
    ----------
    facts : PatientFacts
        The patient's facts on ``facts.as_of`` (see :func:`follicle.cds.fhir.parse_bundle`).
    drug : str
        Ingredient name (see ``drugs.yaml``).
    region : {"EU", "US"}
        Which label applies: the EU SmPC or the US prescribing information.
    mode : {"start", "on_treatment"}
        Before the first dose, or during treatment.
    start : datetime.date, optional
        Treatment start date; when given, a monitoring schedule is added.
    kb : KnowledgeBase, optional
        The rules (default: the bundled knowledge base).
    horizon_months : int
        Length of the monitoring schedule.
    compare : bool
        Also evaluate the other region's label and list where the two differ.

    Returns
    -------
    Decision
        ``decision`` (start, start-with-cautions, cannot-decide, do-not-start), the reasons with
        their sources, dose, missing screening, facts not assessed and the schedule.
    """
    kb = kb or default_kb()
    drug = drug.strip().lower()
    if region not in REGIONS:
        raise InputError(f"region: expected EU or US, got {region!r}")
    entry = kb.drug(drug)
    if entry is None:
        raise InputError(f"drug: {drug!r} is not in the drug catalogue",
                         problems=[f"drugs with an encoded {region} label: {', '.join(kb.encoded_drugs(region))}"])
    label = kb.label(drug, region)
    if label is None or not label.encoded:
        reason = label.reason if label is not None else "no label is encoded for it"
        raise LabelNotEncoded(
            f"drug: {drug} is refused under the {REGION_LABEL[region]}: {reason}",
            problems=[f"drugs with an encoded {region} label: {', '.join(kb.encoded_drugs(region))}"],
        )
    all_rules = kb.for_drug(drug, region=region)
    phases = {"start", "both"} if mode == "start" else {"on_treatment", "both"}
    rules = [r for r in all_rules if r.phase in phases or r.kind in {"dose", "monitoring"}]
    facts, assumed = _assume(facts, rules)
    reasons: list[Reason] = []
    missing: list[Reason] = []
    advice: list[Reason] = []
    fired: list[Rule] = []
    unknown: dict[str, NotAssessed] = {}
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
        action = rule.on_treatment_action if (mode == "on_treatment" and rule.on_treatment_action) else rule.action
        if result is None:
            for f in rule.condition.facts:  # type: ignore[union-attr]
                detail = _unknown_detail(rule, facts, f)
                if getattr(facts, f) is not None and detail is None:
                    continue
                n = unknown.setdefault(f, NotAssessed(fact=f, rule_ids=[]))
                n.rule_ids.append(rule.id)
                n.safety = n.safety or action in SAFETY_ACTIONS
                n.detail = n.detail or detail
            continue
        if result:
            fired.append(rule)
            reasons.append(_reason(rule, action, _observed_for(rule, facts, drug), _threshold_text(rule)))
    not_assessed = list(unknown.values())
    blocking = {"do_not_start", "discontinue"} if mode == "start" else {"do_not_start", "discontinue", "interrupt"}
    needs = [f"{n.fact.replace('_', ' ')}" + (f" ({n.detail})" if n.detail else "") for n in not_assessed if n.safety]
    needs += [f"{r.topic.replace('_', ' ')}: label text not encoded" for r in reasons if r.action == "cannot_decide"]
    if any(r.action in blocking for r in reasons):
        value: DecisionValue = "do-not-start"
    elif needs:
        value = "cannot-decide"
    elif reasons or missing or not_assessed or not entry.approved_for_aa:
        value = "start-with-cautions"
    else:
        value = "start"
    order = {"critical": 0, "warning": 1, "info": 2}
    reasons.sort(key=lambda r: order[r.severity])
    schedule = build_schedule(kb, drug, start, as_of=facts.as_of, history=facts.lab_history(), horizon_months=horizon_months,
                              region=region) if start else None
    dose = _dose(rules, fired)
    shown = reasons + missing + advice + (dose.adjustments if dose else [])
    partial = sorted({r.rule_id for r in shown if r.status == "P"})
    decision = Decision(
        drug=drug, mode=mode, as_of=facts.as_of, region=region, label=label.document, label_version=label.version,
        decision=value, needs=needs, assumed=assumed, not_encoded=[x.topic for x in label.not_encoded],
        approved_for_aa=entry.approved_for_aa,
        reasons=reasons, dose=dose, missing_screening=missing, not_assessed=not_assessed,
        advice=advice, schedule=schedule, partially_verified_rules=partial,
    )
    if compare:
        decision.region_differences = region_differences(decision, facts, kb=kb)
    return decision


def region_differences(decision: Decision, facts: PatientFacts, *, kb: KnowledgeBase | None = None) -> list[str]:
    """Where the other region's label would say something different for this patient."""
    kb = kb or default_kb()
    other: Region = "US" if decision.region == "EU" else "EU"
    label = kb.label(decision.drug, other)
    if label is None or not label.encoded:
        why = label.reason if label is not None else "not encoded"
        return [f"The {REGION_LABEL[other]} is not encoded for {decision.drug} ({why}); no comparison."]
    alt = evaluate(facts, decision.drug, region=other, mode=decision.mode, kb=kb, compare=False)
    out: list[str] = []
    if alt.decision != decision.decision:
        out.append(f"Decision under the {REGION_LABEL[decision.region]}: {decision.decision}; "
                   f"under the {REGION_LABEL[other]}: {alt.decision}.")

    def by_topic(d: Decision) -> dict[str, Reason]:
        rs = d.reasons + (d.dose.adjustments if d.dose else [])
        return {r.topic: r for r in rs}

    here, there = by_topic(decision), by_topic(alt)
    for topic in sorted(set(here) | set(there)):
        a, b = here.get(topic), there.get(topic)
        if a is not None and b is not None and a.action == b.action:
            continue

        def say(r: Reason | None, reg: str) -> str:
            if r is None:
                return f"{REGION_LABEL[reg]}: no rule fires"
            return f"{REGION_LABEL[reg]} {r.section or ''}: {r.action.replace('_', ' ')}".replace("  ", " ")

        out.append(f"{topic.replace('_', ' ')}: {say(a, decision.region)}; {say(b, other)}.")
    if decision.dose and alt.dose and (decision.dose.mg, decision.dose.alternative_mg) != (alt.dose.mg, alt.dose.alternative_mg):
        out.append(f"dose: {REGION_LABEL[decision.region]} {decision.dose.text}; {REGION_LABEL[other]} {alt.dose.text}.")
    return out
