"""Read and check a clinic's CSV registry: visits, patients and safety events.

Single-centre studies keep spreadsheets, not OMOP. These readers check every cell they use and
report *all* problems at once, each naming the file, the row (counted as a spreadsheet does: the
header is row 1, the first patient row is row 2) and the column. The frames they return are
indexed by that row number, so later checks (``follicle.response``) name the same rows.

Schemas
-------
visits:   patient_id, date (YYYY-MM-DD), salt | top, back, left, right (percent loss 0-100),
          on_drug (0/1, yes/no, true/false); optional drug, dose, eyebrow, eyelash (ClinRO 0-3).
patients: patient_id (unique), then any baseline predictors and outcomes.
events:   patient_id, event_type[, date]   (patient level)  or
          event_type, events, person_years (aggregate).
exposure: patient_id, start_date, end_date.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from follicle.errors import InputError
from follicle.response.salt import SALT_WEIGHTS

MAX_PROBLEMS = 20
_TRUE = {"1", "yes", "y", "true", "t", "on"}
_FALSE = {"0", "no", "n", "false", "f", "off"}


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, row: int, col: str, msg: str) -> None:
        self.items.append(f"{self.path.name}: row {row}, column {col!r}: {msg}")

    def raise_if_any(self) -> None:
        if self.items:
            shown = self.items[:MAX_PROBLEMS]
            more = len(self.items) - len(shown)
            head = shown[0] if len(self.items) == 1 else f"{self.path.name}: {len(self.items)} problems"
            extra = [f"... and {more} more"] if more > 0 else []
            raise InputError(head, problems=(shown + extra) if len(self.items) > 1 else [])


def read_table(path: str | Path, *, required: Sequence[str] = (), what: str = "table") -> pd.DataFrame:
    """Read a CSV as text (nothing guessed), indexed by spreadsheet row number; check columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name}: not a readable CSV file ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(
            f"{path.name}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(row 1 has: {', '.join(df.columns)})"
        )
    if df.empty:
        raise InputError(f"{path.name}: no data rows")
    df.index = pd.RangeIndex(2, len(df) + 2, name="row")
    return df.apply(lambda s: s.str.strip())


def _numbers(df: pd.DataFrame, col: str, probs: _Problems, *, lo=None, hi=None, allow_blank=False) -> pd.Series:
    raw = df[col]
    val = pd.to_numeric(raw.where(raw != ""), errors="coerce")
    for row in df.index[(raw == "").to_numpy() & (not allow_blank)]:
        probs.add(row, col, "empty cell (a number is needed)")
    for row in df.index[(raw != "").to_numpy() & val.isna().to_numpy()]:
        probs.add(row, col, f"not a number: {raw.loc[row]!r}")
    if lo is not None or hi is not None:
        out = val.notna() & ((val < lo) | (val > hi))
        for row in df.index[out.to_numpy()]:
            probs.add(row, col, f"must be in [{lo:g}, {hi:g}]; got {val.loc[row]:g}")
    return val


def _dates(df: pd.DataFrame, col: str, probs: _Problems) -> pd.Series:
    raw = df[col]
    val = pd.to_datetime(raw.where(raw != ""), format="%Y-%m-%d", errors="coerce")
    for row in df.index[val.isna().to_numpy()]:
        probs.add(row, col, f"not a date (YYYY-MM-DD): {raw.loc[row]!r}")
    return val


def _flags(df: pd.DataFrame, col: str, probs: _Problems) -> pd.Series:
    low = df[col].str.lower()
    ok = low.isin(_TRUE | _FALSE)
    for row in df.index[~ok.to_numpy()]:
        probs.add(row, col, f"must be 0/1 (or yes/no, true/false); got {df[col].loc[row]!r}")
    return low.isin(_TRUE).astype(int)


def _ids(df: pd.DataFrame, probs: _Problems) -> None:
    for row in df.index[(df["patient_id"] == "").to_numpy()]:
        probs.add(row, "patient_id", "empty patient_id")


def read_visits(path: str | Path) -> pd.DataFrame:
    """Visits with a SALT per row (given, or computed from the four regions), in date order."""
    path = Path(path)
    df = read_table(path, required=["patient_id", "date", "on_drug"], what="visits")
    regions = list(SALT_WEIGHTS)
    has_regions = all(c in df.columns for c in regions)
    if "salt" not in df.columns and not has_regions:
        raise InputError(
            f"{path.name}: needs a 'salt' column or the four region columns {', '.join(regions)} "
            f"(row 1 has: {', '.join(df.columns)})"
        )
    probs = _Problems(path)
    _ids(df, probs)
    out = pd.DataFrame(index=df.index)
    out["patient_id"] = df["patient_id"]
    out["date"] = _dates(df, "date", probs)
    out["on_drug"] = _flags(df, "on_drug", probs)
    if has_regions:
        vals = {c: _numbers(df, c, probs, lo=0, hi=100, allow_blank=True) for c in regions}
        blank = pd.concat([vals[c].isna() for c in regions], axis=1)
        partial = blank.any(axis=1) & ~blank.all(axis=1)
        for row in df.index[partial.to_numpy()]:
            col = regions[int(np.argmax(blank.loc[row].to_numpy()))]
            probs.add(row, col, "region missing while other regions are given (all four are needed)")
        for c in regions:
            out[c] = vals[c]
        computed = sum(SALT_WEIGHTS[c] * vals[c] for c in regions)
        out["salt"] = computed.clip(0, 100)
        if "salt" in df.columns:
            given = _numbers(df, "salt", probs, lo=0, hi=100, allow_blank=True)
            clash = given.notna() & computed.notna() & ((given - computed).abs() > 0.5)
            for row in df.index[clash.to_numpy()]:
                probs.add(row, "salt", f"{given.loc[row]:g} disagrees with the regions' total {computed.loc[row]:.1f}")
            out["salt"] = out["salt"].fillna(given)
    else:
        out["salt"] = _numbers(df, "salt", probs, lo=0, hi=100, allow_blank=True)
    for c in ("eyebrow", "eyelash"):
        if c in df.columns:
            v = _numbers(df, c, probs, lo=0, hi=3, allow_blank=True)
            for row in df.index[(v.notna() & (v != v.round())).to_numpy()]:
                probs.add(row, c, f"ClinRO must be an integer 0-3; got {v.loc[row]:g}")
            out[c] = v
    for c in ("drug", "dose"):
        if c in df.columns:
            out[c] = df[c]
    probs.raise_if_any()
    _check_order(out, probs)
    probs.raise_if_any()
    return out


def _check_order(out: pd.DataFrame, probs: _Problems) -> None:
    prev = out.groupby("patient_id")["date"].shift()
    bad = prev.notna() & (out["date"] <= prev)
    for row in out.index[bad.to_numpy()]:
        probs.add(
            row, "date",
            f"{out.loc[row, 'date'].date()} is not after the previous visit of patient "
            f"{out.loc[row, 'patient_id']!r} ({prev.loc[row].date()}); dates out of order",
        )


def read_patients(path: str | Path, *, required: Sequence[str] = ()) -> pd.DataFrame:
    """One row per patient; numeric-looking columns become numbers, empty cells missing (NaN)."""
    path = Path(path)
    df = read_table(path, required=["patient_id", *required], what="patients")
    probs = _Problems(path)
    _ids(df, probs)
    dup = df["patient_id"].duplicated() & (df["patient_id"] != "")
    for row in df.index[dup.to_numpy()]:
        probs.add(row, "patient_id", f"duplicate patient_id {df.loc[row, 'patient_id']!r}")
    probs.raise_if_any()
    out = df.replace("", np.nan)
    for col in out.columns:
        if col == "patient_id":
            continue
        num = pd.to_numeric(out[col], errors="coerce")
        if num.notna().sum() == out[col].notna().sum():
            out[col] = num
    return out


def read_events(path: str | Path) -> tuple[pd.DataFrame, bool]:
    """Safety events; returns the frame and whether it is aggregate (events, person_years)."""
    path = Path(path)
    head = read_table(path, required=["event_type"], what="events")
    probs = _Problems(path)
    for row in head.index[(head["event_type"] == "").to_numpy()]:
        probs.add(row, "event_type", "empty event_type")
    if {"events", "person_years"} <= set(head.columns):
        out = head[["event_type"]].copy()
        out["events"] = _numbers(head, "events", probs, lo=0, hi=np.inf)
        frac = out["events"].notna() & (out["events"] != out["events"].round())
        for row in head.index[frac.to_numpy()]:
            probs.add(row, "events", f"must be a whole number; got {out.loc[row, 'events']:g}")
        out["person_years"] = _numbers(head, "person_years", probs, lo=0, hi=np.inf)
        for row in head.index[(out["person_years"] == 0).to_numpy()]:
            probs.add(row, "person_years", "must be > 0")
        probs.raise_if_any()
        return out, True
    if "patient_id" not in head.columns:
        raise InputError(
            f"{path.name}: needs columns patient_id, event_type[, date] (patient level) or "
            f"event_type, events, person_years (aggregate); row 1 has: {', '.join(head.columns)}"
        )
    _ids(head, probs)
    out = head[["patient_id", "event_type"]].copy()
    if "date" in head.columns:
        out["date"] = _dates(head, "date", probs)
    probs.raise_if_any()
    return out, False


def read_exposure(path: str | Path) -> pd.DataFrame:
    """Exposure periods; an end before its start is reported as dates out of order."""
    path = Path(path)
    df = read_table(path, required=["patient_id", "start_date", "end_date"], what="exposure")
    probs = _Problems(path)
    _ids(df, probs)
    out = df[["patient_id"]].copy()
    out["start_date"] = _dates(df, "start_date", probs)
    out["end_date"] = _dates(df, "end_date", probs)
    bad = out["start_date"].notna() & out["end_date"].notna() & (out["end_date"] < out["start_date"])
    for row in out.index[bad.to_numpy()]:
        probs.add(row, "end_date", f"{out.loc[row, 'end_date'].date()} is before start_date "
                  f"{out.loc[row, 'start_date'].date()}; dates out of order")
    probs.raise_if_any()
    return out
