"""``docs/cds-rules.md``, generated from the knowledge base (``python -m follicle.cds.rulesdoc``).

A test regenerates it and fails when the committed file is stale.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from follicle.cds.conditions import ICD10_PREFIXES, MALIGNANT_RANGE, SMOKING_SNOMED, SNOMED_CODES, UNCODED_NAMES, VTE_PREFIXES
from follicle.cds.kb import DISCLAIMER, REGION_LABEL, STATUS_FLAG, KnowledgeBase, Rule, default_kb

DOC = Path(__file__).resolve().parents[3] / "docs" / "cds-rules.md"


def _cell(text: object) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _when(r: Rule) -> str:
    c = r.condition
    if c is None:
        if r.dose is not None:
            alt = f" (or {r.dose.alternative_mg:g} mg)" if r.dose.alternative_mg else ""
            return f"dose {r.dose.mg:g} mg {r.dose.frequency}{alt}"
        if r.task is not None:
            return f"monitor {', '.join(r.task.analytes)}: {r.task.label}"
        return "always (advice)"
    facts = " / ".join(c.facts)
    if c.op == "known":
        return f"{facts} unknown"
    if r.threshold is not None:
        t = r.threshold
        if c.op == "between":
            return f"{t.low:g} <= {facts} {'<=' if t.high_inclusive else '<'} {t.high:g} {t.unit}"
        return f"{facts} {c.op} {t.value:g} {t.unit}"
    vals = ", ".join(str(v) for v in c.values or [])
    extra = f" (open if {', '.join(map(str, c.unknown_values))})" if c.unknown_values else ""
    when = f" [{', '.join(f'{k}={v}' for k, v in c.when.items())}]" if c.when else ""
    return f"{facts} {c.op} {vals}{extra}{when}"


def _action(r: Rule) -> str:
    a = r.action.replace("_", " ")
    if r.on_treatment_action:
        a += f"; on treatment {r.on_treatment_action.replace('_', ' ')}"
    if r.dose_map:
        a += " (" + ", ".join(f"{k}->{v:g} mg" for k, v in r.dose_map.items()) + ")"
    return a


def render(kb: KnowledgeBase | None = None) -> str:
    """The whole document as Markdown."""
    kb = kb or default_kb()
    out = ["# CDS rules (generated from `src/follicle/cds/kb/*.yaml`: do not edit)", "",
           f"> **{DISCLAIMER}**", "",
           "Regenerate with `python -m follicle.cds.rulesdoc`; `tests/cds/test_cds_rulesdoc.py` fails when this file is stale.",
           "Status: " + "; ".join(f"**{k}** = {v}" for k, v in STATUS_FLAG.items()) + ". "
           "A `cannot decide` rule marks a label point whose text could not be sourced: when it applies the engine answers "
           "\"cannot decide: need ...\" rather than guess.", ""]
    counts = Counter(r.status for r in kb.rules)
    out += [f"{len(kb.rules)} rules: " + ", ".join(f"{counts[s]} {s}" for s in ("V", "P", "G")) + ".", ""]
    out += ["## Labels", "", "| drug | region | label | encoded | version / reason |", "|---|---|---|---|---|"]
    for lab in kb.labels:
        out.append(f"| {lab.drug} | {lab.region} | {_cell(lab.document)} | {'yes' if lab.encoded else '**refused**'} | "
                   f"{_cell(lab.version if lab.encoded else lab.reason)} |")
    out.append("")
    for lab in (x for x in kb.labels if x.encoded):
        rules = kb.for_drug(lab.drug, region=lab.region)
        out += [f"## {lab.drug}: {REGION_LABEL[lab.region]} ({lab.document})", "",
                f"Sections encoded: {lab.sections}. Source of the text: {lab.url}", "",
                "| rule | when | action | section | status | source | label text |", "|---|---|---|---|---|---|---|"]
        for r in rules:
            src = f"[{_cell(r.source.label)}]({r.source.url})"
            out.append(f"| `{r.id}` | {_cell(_when(r))} | {_cell(_action(r))} | {_cell(r.section if r.basis == 'label' else 'practice guidance')} | "
                       f"{r.status} | {src} | {_cell(r.quote)} |")
        out += ["", "Not encoded (source not available):", ""]
        out += [f"- {x.topic}" for x in lab.not_encoded] or ["- (none listed)"]
        out.append("")
    out += ["## Drug catalogue (record -> classes)", "",
            "| ingredient | RXCUI | classes | where the class comes from |", "|---|---|---|---|"]
    for d in kb.drugs:
        rx = f"{d.rxcui} ({d.rxcui_status})" if d.rxcui else "not verified: matched by name"
        out.append(f"| {d.name} | {rx} | {', '.join(d.classes) or '-'} | {_cell(d.class_source or '')} |")
    out += ["", "## Conditions read from the record", "",
            "ICD-10-CM (checked against the CMS FY2026 tabular in `simple-icd-10-cm` 1.5.0; a category covers its children; "
            "codes are read with or without their dot):", ""]
    out += [f"- {', '.join(p)} -> `{f} = {v!r}`{' (current only)' if cur else ''}" for p, f, v, cur in ICD10_PREFIXES]
    out += [f"- C{MALIGNANT_RANGE[0]:02d}-C{MALIGNANT_RANGE[1]:02d} -> `malignancy_history = True`",
            f"- {', '.join(VTE_PREFIXES)} -> `vte_risk_factors: prior_vte`", "",
            "SNOMED CT (only codes found in the OMOP vocabularies shipped in `shared/data/omop`, and the US Core smoking "
            "example; SNOMED codes for TB, latent TB and hepatitis B/C are **not encoded: source not available**):", ""]
    out += [f"- {code} -> `{f} = {v!r}`" for code, (f, v, _) in SNOMED_CODES.items()]
    out += ["", "A current Condition without an ICD-10-CM code whose name says "
            + ", ".join(f"`{p.pattern}` ({f})" for f, p in UNCODED_NAMES)
            + " (not screening, vaccination, immunity, exposure or a negative finding) leaves that fact open: a negative "
            "test is then not taken as reassurance."]
    out += ["", "Smoking status (LOINC 72166-2) answers: " + ", ".join(f"{c} -> {v}" for c, v in SMOKING_SNOMED.items())
            + "; otherwise read from the answer text (never / former / current).", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write the document (or print it with ``-``)."""
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if argv and argv[0] == "-":
        sys.stdout.write(text)
    else:
        target = Path(argv[0]) if argv else DOC
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
