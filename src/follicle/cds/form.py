"""Patient facts typed into a form (name -> text), read strictly into :class:`PatientFacts`.

A blank field means *not known*, never *normal* (the engine then lists it as needed or not
assessed). Each fact can be marked *assumed*: it is used, and the decision says it was assumed
rather than read from the record. With a FHIR record given as well, the form only fills what the
record lacks (as ``follicle cds check --fact`` does), and what it fills is listed as assumed.
Every problem names its field; all problems are reported at once.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from follicle.cds.facts import (
    Concomitant, HbvStatus, HcvStatus, HepaticClass, LabValue, PatientFacts, Sex, Smoking, TbStatus, VteRiskFactor,
)
from follicle.cds.kb import KnowledgeBase, default_kb
from follicle.cds.units import CANONICAL_UNITS
from follicle.errors import InputError


@dataclass(frozen=True)
class Field:
    """One fact of the form: its name (a :class:`PatientFacts` field), label, kind and choices."""

    name: str
    label: str
    kind: str  # "int", "bool", "choice", "lab", "multi", "drugs"
    choices: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


def _choices(literal: Any) -> tuple[str, ...]:
    return tuple(get_args(literal))


FIELDS: tuple[Field, ...] = (
    Field("age_years", "Age (years)", "int"),
    Field("sex", "Sex", "choice", _choices(Sex)),
    Field("pregnant", "Pregnant", "bool"),
    Field("lactating", "Breastfeeding", "bool"),
    Field("egfr", "eGFR", "lab", units=("mL/min/1.73m2",)),
    Field("crcl", "Creatinine clearance", "lab", units=("mL/min",)),
    Field("hepatic_class", "Hepatic impairment (Child-Pugh)", "choice", _choices(HepaticClass)),
    Field("lymphocytes", "Absolute lymphocyte count", "lab", units=("cells/mm3", "10*3/uL", "10*9/L")),
    Field("neutrophils", "Absolute neutrophil count", "lab", units=("cells/mm3", "10*3/uL", "10*9/L")),
    Field("haemoglobin", "Haemoglobin", "lab", units=("g/dL", "g/L")),
    Field("platelets", "Platelets", "lab", units=("10*3/uL", "cells/mm3", "10*9/L")),
    Field("tb_status", "Tuberculosis", "choice", _choices(TbStatus)),
    Field("hbv_status", "Hepatitis B", "choice", _choices(HbvStatus)),
    Field("hcv_status", "Hepatitis C", "choice", _choices(HcvStatus)),
    Field("active_infection", "Active serious infection", "bool"),
    Field("vte_risk_factors", "Risk factors for venous thromboembolism", "multi", _choices(VteRiskFactor)),
    Field("malignancy_history", "History of malignancy", "bool"),
    Field("smoking", "Smoking", "choice", _choices(Smoking)),
    Field("cv_risk", "Cardiovascular risk factors", "bool"),
    Field("zoster_vaccinated", "Herpes zoster vaccination", "bool"),
    Field("immunizations_up_to_date", "Immunisations up to date", "bool"),
    Field("cyp2c9_poor_metabolizer", "CYP2C9 poor metaboliser", "bool"),
    Field("esrd_or_renal_transplant", "End-stage renal disease or renal transplant", "bool"),
    Field("concomitant", "Other medicines taken", "drugs"),
)
BY_NAME = {f.name: f for f in FIELDS}
NONE_MARK = "none"  # the "none of these" choice of a multi field


@dataclass
class FormFacts:
    """The facts read from a form, and the facts marked assumed (in words)."""

    facts: PatientFacts
    assumed: list[str]


def _one(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return "" if value is None else str(value).strip()


def _many(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def _number(text: str, name: str, problems: list[str]) -> float | None:
    try:
        x = float(text)
    except ValueError:
        problems.append(f"{name}: expected a number, got {text!r}")
        return None
    if not math.isfinite(x) or x < 0:
        problems.append(f"{name}: expected a finite number >= 0, got {text!r}")
        return None
    return x


def _field_value(f: Field, fields: Mapping[str, Any], as_of: dt.date, kb: KnowledgeBase,
                 problems: list[str]) -> Any:
    raw = fields.get(f.name)
    if f.kind == "multi":
        items = _many(raw)
        if not items:
            return None
        if NONE_MARK in items:
            if len(items) > 1:
                problems.append(f"{f.name}: 'none' cannot be ticked together with {', '.join(i for i in items if i != NONE_MARK)}")
            return []
        bad = [i for i in items if i not in f.choices]
        if bad:
            problems.append(f"{f.name}: unknown choice(s) {', '.join(map(repr, bad))} (allowed: {', '.join(f.choices)})")
        return [i for i in items if i in f.choices]
    if f.kind == "drugs":
        items = _many(raw)
        if not items:
            return None
        if NONE_MARK in items:
            return []
        out = []
        for name in items:
            entry = kb.drug(name)
            if entry is None:
                problems.append(f"{f.name}: {name!r} is not in the drug catalogue")
                continue
            out.append(Concomitant(name=entry.name, classes=entry.classes, matched_by="given"))  # type: ignore[arg-type]
        return out
    text = _one(raw)
    if text == "":
        return None
    if f.kind == "int":
        x = _number(text, f.name, problems)
        if x is None:
            return None
        if x != int(x) or x > 150:
            problems.append(f"{f.name}: expected whole years from 0 to 150, got {text!r}")
            return None
        return int(x)
    if f.kind == "bool":
        if text not in ("yes", "no"):
            problems.append(f"{f.name}: expected yes, no or blank (unknown), got {text!r}")
            return None
        return text == "yes"
    if f.kind == "choice":
        if text not in f.choices:
            problems.append(f"{f.name}: expected one of {', '.join(f.choices)}, got {text!r}")
            return None
        return text
    # lab: value, unit and date fields
    x = _number(text, f.name, problems)
    unit = _one(fields.get(f"{f.name}_unit")) or (f.units[0] if f.units else CANONICAL_UNITS[f.name])
    when_text = _one(fields.get(f"{f.name}_date"))
    when = as_of
    if when_text:
        try:
            when = dt.date.fromisoformat(when_text)
        except ValueError:
            problems.append(f"{f.name}_date: expected a date as YYYY-MM-DD, got {when_text!r}")
            return None
        if when > as_of:
            problems.append(f"{f.name}_date: {when} is after the evaluation date {as_of}")
            return None
    if x is None:
        return None
    try:
        return LabValue.of(f.name, x, unit, when)
    except ValueError as exc:
        problems.append(f"{f.name}_unit: {exc}")
        return None


def facts_from_form(fields: Mapping[str, Any], *, as_of: dt.date, base: PatientFacts | None = None,
                    kb: KnowledgeBase | None = None) -> FormFacts:
    """Read the facts of :data:`FIELDS` from *fields* (one value, or a list for multi fields).

    ``<name>_assumed`` = ``on`` marks a fact assumed. With *base* (facts read from a FHIR record),
    a form value for a fact the record already gives is an error, and every filled fact is assumed.
    Raises :class:`InputError` listing every problem.
    """
    kb = kb or default_kb()
    problems: list[str] = []
    values: dict[str, Any] = {}
    assumed: list[str] = []
    for f in FIELDS:
        value = _field_value(f, fields, as_of, kb, problems)
        if value is None:
            continue
        if base is not None and getattr(base, f.name) is not None:
            problems.append(f"{f.name}: the record already gives {getattr(base, f.name)!r}; the form only fills what it lacks")
            continue
        values[f.name] = value
        if base is not None or _one(fields.get(f"{f.name}_assumed")) == "on":
            assumed.append(f"{f.label.lower()}: {_describe(value)}")
    if problems:
        raise InputError(f"patient form: {len(problems)} problem(s)", problems=problems)
    data = (base.model_dump() if base is not None else {"as_of": as_of}) | values
    return FormFacts(facts=PatientFacts.model_validate(data), assumed=assumed)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, LabValue):
        return f"{value.value:g} {value.unit}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(getattr(v, "name", str(v)) for v in value) or "none"
    return str(value)
