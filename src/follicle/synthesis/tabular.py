"""Effect sizes from a data frame of studies, with every bad row reported at once.

Accepted layouts (column names exact):

* binary: ``study, events_t, total_t, events_c, total_c`` (measures OR, RR, RD);
* continuous: ``study, mean_t, sd_t, n_t, mean_c, sd_c, n_c`` (MD, SMD);
* generic: ``study, estimate, se`` (GEN; log scale for ratio estimates).

Rows are numbered from 1 for the first data row (a CSV's line number is the row + 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from follicle.errors import InputError
from follicle.synthesis.effect_sizes import (
    EffectSizes,
    binary_effects,
    continuous_effects,
    generic_effects,
)

LAYOUTS: dict[str, tuple[str, ...]] = {
    "binary": ("events_t", "total_t", "events_c", "total_c"),
    "continuous": ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c"),
    "generic": ("estimate", "se"),
}
MEASURE_LAYOUT = {"OR": "binary", "RR": "binary", "RD": "binary", "MD": "continuous", "SMD": "continuous", "GEN": "generic"}


def _row_name(i: int, study: object) -> str:
    return f"row {i + 1} (study {study!r})"


def _numeric(frame: pd.DataFrame, cols: tuple[str, ...], problems: list[str], studies: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col in cols:
        values = pd.to_numeric(frame[col], errors="coerce")
        for i in np.flatnonzero(values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))):
            raw = frame[col].iloc[i]
            problems.append(f"{_row_name(i, studies[i])}: {col} must be a finite number; got {raw!r}")
        out[col] = values
    return out


def effects_from_frame(
    frame: pd.DataFrame,
    *,
    measure: str,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    source: str = "data",
    ratio: bool = False,
) -> EffectSizes:
    """Validate *frame* and compute study effect sizes for *measure*.

    Parameters
    ----------
    ratio : for GEN: the estimates are log ratios (log HR, log OR...); results get an ``exp`` block.

    Raises
    ------
    InputError
        Listing every problem, each naming its row and column: missing columns, non-numeric
        cells, negative counts, events above totals, SD or n <= 0, non-positive SE, duplicate
        or empty study names, no study rows. One study is fitted as metafor does (k = 1).
    """
    measure = measure.upper()
    if measure not in MEASURE_LAYOUT:
        raise InputError(f"--measure must be one of {', '.join(MEASURE_LAYOUT)}; got {measure!r}")
    layout = MEASURE_LAYOUT[measure]
    needed = ("study",) + LAYOUTS[layout]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(
            f"{source}: measure {measure} needs columns {', '.join(needed)}; missing {', '.join(missing)}"
            f" (found: {', '.join(map(str, frame.columns))})"
        )
    problems: list[str] = []
    studies = ["" if pd.isna(s) else str(s).strip() for s in frame["study"]]
    seen: dict[str, int] = {}
    for i, s in enumerate(studies):
        if not s:
            problems.append(f"row {i + 1}: study name is empty")
        elif s in seen:
            problems.append(f"{_row_name(i, s)}: duplicate study name (also row {seen[s] + 1})")
        else:
            seen[s] = i
    num = _numeric(frame, LAYOUTS[layout], problems, studies)
    if len(frame) < 1:
        problems.append(f"a meta-analysis needs at least 1 study; {source} has no data rows")
    for i in range(len(frame)):
        r = num.iloc[i]
        name = _row_name(i, studies[i])
        if layout == "binary":
            for col in LAYOUTS[layout]:
                v = r[col]
                if pd.notna(v) and v < 0:
                    problems.append(f"{name}: {col} must be >= 0; got {v:g}")
                elif pd.notna(v) and v != round(v):
                    problems.append(f"{name}: {col} must be a whole number; got {v:g}")
            for ev, tot in (("events_t", "total_t"), ("events_c", "total_c")):
                if pd.notna(r[ev]) and pd.notna(r[tot]) and r[ev] > r[tot]:
                    problems.append(f"{name}: {ev} = {r[ev]:g} exceeds {tot} = {r[tot]:g}")
                if pd.notna(r[tot]) and r[tot] == 0:
                    problems.append(f"{name}: {tot} must be > 0; got 0")
        elif layout == "continuous":
            for col in ("sd_t", "sd_c"):
                if pd.notna(r[col]) and r[col] <= 0:
                    problems.append(f"{name}: {col} must be > 0; got {r[col]:g}")
            for col in ("n_t", "n_c"):
                if pd.notna(r[col]) and (r[col] < 2 or r[col] != round(r[col])):
                    problems.append(f"{name}: {col} must be a whole number >= 2; got {r[col]:g}")
        else:
            if pd.notna(r["se"]) and r["se"] <= 0:
                problems.append(f"{name}: se must be > 0; got {r['se']:g}")
    if problems:
        raise InputError(f"{source}: {len(problems)} problem(s) in the study data", problems=problems)
    es = _compute(num, studies, layout, measure, add, to, drop00, ratio)
    bad = [f"{_row_name(studies.index(lab), lab)}: effect size or variance not finite"
           + (" (a zero cell with no continuity correction: use --to only0 or --add > 0)" if layout == "binary" else "")
           for lab, y, v in zip(es.labels, es.yi, es.vi) if not (np.isfinite(y) and np.isfinite(v) and v > 0)]
    if bad:
        raise InputError(f"{source}: {len(bad)} study(ies) without a usable effect size", problems=bad)
    if es.k < 1:
        raise InputError(
            f"{source}: no study left after dropping double-zero studies ({', '.join(es.dropped)}); "
            "keep them with --keep00 (0.5 added to their cells) or use method MH"
        )
    return es


def _compute(
    num: pd.DataFrame, studies: list[str], layout: str, measure: str, add: float, to: str, drop00: bool, ratio: bool
) -> EffectSizes:
    if layout == "binary":
        return binary_effects(
            num["events_t"], num["total_t"], num["events_c"], num["total_c"],
            measure=measure, labels=studies, add=add, to=to, drop00=drop00,  # type: ignore[arg-type]
        )
    if layout == "continuous":
        return continuous_effects(
            num["mean_t"], num["sd_t"], num["n_t"], num["mean_c"], num["sd_c"], num["n_c"],
            measure=measure, labels=studies,
        )
    return generic_effects(num["estimate"], num["se"], labels=studies, measure="RATIO" if ratio else "GEN")
