"""Engine results -> CDS Hooks cards. Every card's detail cites its sources and carries the disclaimer."""

from __future__ import annotations

import uuid

from follicle.cds.engine import Decision, Reason
from follicle.cds.kb import DISCLAIMER
from follicle.cds.schedule import ScheduledTask
from follicle.service.models import Action, Card, CardSource, Coding, Suggestion

CBC_LOINC = "58410-2"  # CBC panel - Blood by Automated count [V] clinical.md §4
CBC_ANALYTES = {"lymphocytes", "neutrophils", "haemoglobin", "platelets"}
KB_SOURCE = CardSource(label="Follicle CDS knowledge base (each source is cited in the detail)")
OVERRIDE_REASONS = [Coding(code="clinician-judgement", display="Clinician judgement: benefit outweighs the flagged risk"),
                    Coding(code="information-outdated", display="The record is out of date; the condition has been checked")]


def short(text: str, limit: int = 139) -> str:
    """One line of at most *limit* characters (the spec wants a summary under 140)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cite(r: Reason) -> str:
    flag = {"V": "", "P": " **[partially verified]**", "G": " **[practice guidance, not a label statement]**"}[r.status]
    also = "".join(f"; [{s.label}]({s.url})" for s in r.also)
    note = f" _{r.note}_" if r.note else ""
    where = f"{r.label}, section {r.section}" if r.basis == "label" else "practice guidance"
    quote = f' Label text: "{r.quote}"' if r.quote else ""
    return f"Rule `{r.rule_id}`. Source ({where}; checked {r.checked}): [{r.source.label}]({r.source.url}){also}.{quote}{flag}{note}"


def _detail(lines: list[str]) -> str:
    return "\n\n".join(lines + [f"*{DISCLAIMER}*"])


def cbc_suggestion(patient_id: str) -> Suggestion:
    return Suggestion(
        label="Order CBC panel (LOINC 58410-2)", uuid=str(uuid.uuid4()), isRecommended=True,
        actions=[Action(type="create", description="Add a CBC order (lymphocyte and neutrophil counts are needed)", resource={
            "resourceType": "ServiceRequest", "status": "draft", "intent": "order",
            "code": {"coding": [{"system": "http://loinc.org", "code": CBC_LOINC}]},
            "subject": {"reference": f"Patient/{patient_id}"},
        })],
    )


def reason_card(drug: str, r: Reason, *, on_treatment: bool = False) -> Card:
    what = f" ({r.observed}; rule: {r.threshold})" if r.observed and r.threshold else (f" ({r.observed})" if r.observed else "")
    verb = {"do_not_start": "not recommended" if on_treatment else "do not start", "discontinue": "discontinue", "interrupt": "interrupt",
            "reduce_dose": "reduce dose", "cannot_decide": "cannot decide", "restrict": "only if no suitable alternative",
            "caution": "caution", "info": "note"}[r.action]
    return Card(
        uuid=str(uuid.uuid4()), summary=short(f"{drug.capitalize()}: {verb}. {r.message}"),
        detail=_detail([f"**{verb.capitalize()}**: {r.message}{what}", _cite(r)]),
        indicator=r.severity,  # type: ignore[arg-type]
        source=CardSource(label=r.source.label, url=str(r.source.url)),
        overrideReasons=OVERRIDE_REASONS if r.severity != "info" else None,
    )


def decision_card(d: Decision) -> Card:
    """The lead card: the decision, the label applied, what is needed, assumed, and where EU and US differ."""
    indicator = {"do-not-start": "critical", "cannot-decide": "warning", "start-with-cautions": "warning", "start": "info"}[d.decision]
    head = {"do-not-start": "do not start", "cannot-decide": "cannot decide", "start-with-cautions": "start with cautions",
            "start": "no label objection found"}[d.decision]
    summary = f"{d.drug.capitalize()} ({d.region}): {head}"
    if d.needs and d.decision == "cannot-decide":
        summary += ": need " + ", ".join(n.split(" (")[0] for n in d.needs)
    lines = [f"**Decision: {d.decision}** under the {d.label}" + (f" ({d.label_version})" if d.label_version else "") + "."]
    if d.needs:
        lines.append(("Cannot decide without: " if d.decision == "cannot-decide" else "Also unknown: ") + "; ".join(d.needs) + ".")
    if d.assumed:
        lines.append("Assumed (not from the record): " + "; ".join(d.assumed) + ".")
    if d.region_differences:
        lines.append("Where the EU SmPC and the US prescribing information differ for this patient:")
        lines += [f"- {x}" for x in d.region_differences]
    if d.not_encoded:
        lines.append("Label points not encoded (source not available): " + "; ".join(d.not_encoded) + ".")
    return Card(uuid=str(uuid.uuid4()), summary=short(summary), detail=_detail(lines), indicator=indicator,  # type: ignore[arg-type]
                source=KB_SOURCE, overrideReasons=OVERRIDE_REASONS if indicator != "info" else None)


def order_cards(d: Decision, patient_id: str, ordered_mg: float | None, warnings: list[str]) -> list[Card]:
    """Cards for a draft JAK inhibitor order (order-sign / order-select)."""
    cards = [decision_card(d)] + [reason_card(d.drug, r) for r in d.reasons]
    if d.dose is not None:
        dose = d.dose
        allowed = {dose.mg} | ({dose.alternative_mg} if dose.alternative_mg is not None else set())
        off = ordered_mg is not None and ordered_mg not in allowed
        lines = [f"Sourced dose: **{dose.text}**.", _cite(dose.base)] + [f"Step-down: {a.message} " + _cite(a) for a in dose.adjustments]
        if ordered_mg is not None:
            lines.insert(0, f"Ordered: {ordered_mg:g} mg.")
        summary = (f"{d.drug.capitalize()} ordered {ordered_mg:g} mg; sourced dose here is {dose.text.split(' after')[0]}" if off
                   else f"{d.drug.capitalize()} dose: {dose.text.split(' after')[0]}")
        cards.append(Card(uuid=str(uuid.uuid4()), summary=short(summary), detail=_detail(lines),
                          indicator="warning" if (off or dose.adjustments) else "info",
                          source=CardSource(label=dose.base.source.label, url=str(dose.base.source.url))))
    if d.missing_screening:
        items = "; ".join(m.message.rstrip(".") for m in d.missing_screening)
        need_cbc = any(m.rule_id.endswith(".cbc") for m in d.missing_screening)
        lines = ["Not found in the record before starting:"] + [f"- {m.message} {_cite(m)}" for m in d.missing_screening]
        cards.append(Card(
            uuid=str(uuid.uuid4()), summary=short(f"Screening missing before {d.drug}: {items}"),
            detail=_detail(lines), indicator="warning", source=KB_SOURCE,
            suggestions=[cbc_suggestion(patient_id)] if need_cbc else None,
            selectionBehavior="at-most-one" if need_cbc else None,
        ))
    if d.not_assessed:
        facts = ", ".join(n.fact.replace("_", " ") for n in d.not_assessed)
        lines = [f"The record does not settle: {facts}. Rules that need them:"] + [
            f"- {n.fact}{' (' + n.detail + ')' if n.detail else ''}: {', '.join(n.rule_ids)}" for n in d.not_assessed]
        safety = any(n.safety for n in d.not_assessed)
        cards.append(Card(uuid=str(uuid.uuid4()), summary=short(f"Confirm before {d.drug}: {facts}"),
                          detail=_detail(lines), indicator="warning" if safety else "info", source=KB_SOURCE))
    if warnings:
        cards.append(Card(uuid=str(uuid.uuid4()), summary=short(f"{len(warnings)} note(s) on how the record was read"),
                          detail=_detail([f"- {w}" for w in warnings]), indicator="info", source=KB_SOURCE))
    return cards


def _task_line(t: ScheduledTask) -> str:
    flag = "" if t.status_tag == "V" else " **[partially verified]**"
    basis = "label" if t.basis == "label" else "practice guidance"
    window = f"{t.due_from} to {t.due_by}" if t.due_from else f"by {t.due_by}"
    missing = f" (missing: {', '.join(t.missing_analytes)})" if t.missing_analytes else ""
    return f"- {t.label}, {window}: **{t.status}**{missing}. Source ({basis}, checked {t.checked}): [{t.source.label}]({t.source.url}){flag}"


def monitoring_cards(d: Decision, patient_id: str) -> list[Card]:
    """Cards for a patient on a JAK inhibitor (patient-view): abnormal labs, contraindications arising on
    treatment, overdue and due tasks.

    Lab-driven reasons (lab thresholds, renal limits, dose step-downs) and every reason that stops or
    questions treatment (interrupt, discontinue, not recommended, cannot decide: e.g. a new pregnancy or
    an interacting drug started since) become cards; the start-time cautions (age, history) belong to the
    order check, not to every chart opening.
    """
    cards = [reason_card(d.drug, r, on_treatment=True) for r in d.reasons
             if r.kind in {"lab_threshold", "renal", "dose_adjustment"}
             or r.action in {"interrupt", "discontinue", "do_not_start", "cannot_decide"}]
    if d.schedule is None:
        return cards
    for status, indicator in (("overdue", "warning"), ("due", "info")):
        tasks = [t for t in d.schedule.tasks if t.status == status]
        if not tasks:
            continue
        needs_cbc = any(CBC_ANALYTES & set(t.missing_analytes) for t in tasks)
        labels = "; ".join(t.label for t in tasks)
        cards.append(Card(
            uuid=str(uuid.uuid4()), summary=short(f"{d.drug.capitalize()} monitoring {status}: {labels}"),
            detail=_detail([f"Treatment started {d.schedule.start}; status on {d.schedule.as_of}:"] + [_task_line(t) for t in tasks]),
            indicator=indicator,  # type: ignore[arg-type]
            source=CardSource(label=tasks[0].source.label, url=str(tasks[0].source.url)),
            suggestions=[cbc_suggestion(patient_id)] if needs_cbc else None,
            selectionBehavior="at-most-one" if needs_cbc else None,
        ))
    return cards


def info_card(summary: str, lines: list[str]) -> Card:
    return Card(uuid=str(uuid.uuid4()), summary=short(summary), detail=_detail(lines), indicator="info", source=KB_SOURCE)
