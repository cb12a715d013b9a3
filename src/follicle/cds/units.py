"""Units for the lab facts: one canonical unit per analyte and the conversions the rules need.

Blood counts are held in UCUM ``10*3/uL`` (= 10^9/L); the labels state thresholds in
cells/mm3 (= cells/uL), so 500 cells/mm3 = 0.5 10*3/uL (clinical.md §5 note). Haemoglobin is
held in g/dL (1 g/dL = 10 g/L). Conversions that need a constant the reference does not give
(e.g. haemoglobin in mmol/L) are refused with a clear error rather than guessed.
"""

from __future__ import annotations

from fractions import Fraction

CANONICAL_UNITS: dict[str, str] = {
    "lymphocytes": "10*3/uL",
    "neutrophils": "10*3/uL",
    "platelets": "10*3/uL",
    "haemoglobin": "g/dL",
    "egfr": "mL/min/1.73m2",
    "crcl": "mL/min",
    "age_years": "a",
    "liver_enzymes": "U/L",
    "lipids": "mg/dL",
}

_ONE = Fraction(1)
_MILLI = Fraction(1, 1000)
_COUNT = {
    "10*3/ul": _ONE, "10*3/mm3": _ONE, "k/ul": _ONE, "10*9/l": _ONE, "/nl": _ONE,
    "/ul": _MILLI, "cells/ul": _MILLI, "/mm3": _MILLI, "cells/mm3": _MILLI,
}
# Exact fractions so that a value exactly at a threshold stays exactly at it after conversion.
_FACTORS: dict[str, dict[str, Fraction]] = {
    "lymphocytes": _COUNT,
    "neutrophils": _COUNT,
    "platelets": _COUNT,
    "haemoglobin": {"g/dl": _ONE, "g/l": Fraction(1, 10)},
    "egfr": {"ml/min/1.73m2": _ONE},
    "crcl": {"ml/min": _ONE},
    "age_years": {"a": _ONE},
    "liver_enzymes": {"u/l": _ONE, "iu/l": _ONE},
    "lipids": {"mg/dl": _ONE},
}


def normalise(unit: str) -> str:
    """A lenient key for a unit string: case, spaces, ``^``/``E`` exponents, braces, ``x`` prefix."""
    u = unit.strip().lower().replace(" ", "").replace("µ", "u").replace("μ", "u").replace("^", "*")
    u = u.replace("{cells}", "cells").replace("{1.73_m2}", "1.73m2").replace("1.73m*2", "1.73m2")
    u = u.replace("cu.mm", "mm3").replace("mm*3", "mm3")
    if u.startswith("x10") or u.startswith("×10"):
        u = u[1:]
    if u.startswith("10e"):
        u = "10*" + u[3:]
    return u


def factor(unit: str, analyte: str) -> Fraction:
    """Multiplier taking a value in *unit* to the canonical unit of *analyte*."""
    if analyte not in _FACTORS:
        raise ValueError(f"no unit table for analyte {analyte!r}")
    key = normalise(unit)
    table = _FACTORS[analyte]
    if key not in table:
        allowed = ", ".join(sorted(table))
        raise ValueError(f"unit {unit!r} is not supported for {analyte} (supported: {allowed})")
    return table[key]


def convert(value: float, unit: str, to_unit: str, *, analyte: str) -> float:
    """Convert *value* from *unit* to *to_unit* for *analyte* (both must be in its table)."""
    return float(Fraction(value) * factor(unit, analyte) / factor(to_unit, analyte))
