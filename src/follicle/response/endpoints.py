"""Trial endpoints from a patient's series of SALT assessments.

Input is a visits table with one row per assessment: ``patient_id``, ``date`` (or ``day``, days
since an arbitrary origin), ``salt`` (0-100) and ``on_drug`` (0/1). The index date is a patient's
first on-drug visit; the baseline is the last assessment on or before it.

Endpoints (clinical.md section 2.2): absolute SALT <= 20 and <= 10; relative SALT50/75/90, i.e.
``(baseline - current) / baseline >= 0.50/0.75/0.90``, undefined when the baseline is 0; percent
regrowth ``100 (baseline - current) / baseline``; time to first response; relapse after stopping;
the value at a landmark (e.g. 9 months +/- 6 weeks) with last-observation-carried-forward or
non-responder imputation, stated per patient in ``assessment``.

References
----------
Olsen EA et al. J Am Acad Dermatol 2004;51:440-447 (SALT and relative SALT endpoints).
King B et al. N Engl J Med 2022;386:1687-1699 (BRAVE-AA: SALT <= 20 at week 36).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from follicle.errors import InputError

RESPONSE_DEFINITIONS = ("salt20", "salt10", "salt50", "salt75", "salt90")
IMPUTATIONS = ("locf", "nri", "none")
DAYS_PER_MONTH = 365.25 / 12


def relative_reduction(baseline, current):
    """``(baseline - current) / baseline``; NaN where the baseline is 0 (undefined)."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b > 0, (b - c) / np.where(b > 0, b, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def percent_regrowth(baseline, current):
    """Percent regrowth: 100 x relative reduction in SALT from baseline (NaN for baseline 0)."""
    return 100.0 * relative_reduction(baseline, current)


def meets(definition: str, baseline, current):
    """Whether *current* meets a response definition (1.0/0.0; NaN when undefined or missing)."""
    if definition not in RESPONSE_DEFINITIONS:
        raise ValueError(f"response definition must be one of {RESPONSE_DEFINITIONS}; got {definition!r}")
    c = np.asarray(current, dtype=float)
    level = int(definition[4:])
    if level <= 20:  # absolute: salt20, salt10
        res = np.where(np.isnan(c), np.nan, (c <= level).astype(float))
    else:
        rel = np.asarray(relative_reduction(baseline, c), dtype=float)
        res = np.where(np.isnan(rel), np.nan, (rel >= level / 100 - 1e-12).astype(float))
    return float(res) if res.ndim == 0 else res


@dataclass(frozen=True)
class EndpointSettings:
    """How to read each patient's series: response definition and assessment time point.

    ``landmark_days`` None assesses at the end of treatment (last on-drug visit), as a pilot trial
    does; otherwise the visit nearest ``index + landmark_days`` within +/- ``window_days``, and
    without one the ``imputation``: ``locf`` carries the last earlier assessment forward, ``nri``
    counts a non-responder, ``none`` leaves the patient missing.
    """

    response: str = "salt20"
    landmark_days: float | None = None
    window_days: float = 42.0
    imputation: str = "nri"

    def validate(self) -> None:
        if self.response not in RESPONSE_DEFINITIONS:
            raise ValueError(f"response must be one of {RESPONSE_DEFINITIONS}; got {self.response!r}")
        if self.imputation not in IMPUTATIONS:
            raise ValueError(f"imputation must be one of {IMPUTATIONS}; got {self.imputation!r}")
        if self.landmark_days is not None and self.landmark_days <= 0:
            raise ValueError(f"landmark_days must be > 0; got {self.landmark_days!r}")
        if self.window_days < 0:
            raise ValueError(f"window_days must be >= 0; got {self.window_days!r}")

    def describe(self) -> str:
        if self.landmark_days is None:
            return f"{self.response} at the end of treatment (last on-drug visit)"
        return (
            f"{self.response} at day {self.landmark_days:g} +/- {self.window_days:g} after the first on-drug "
            f"visit; no visit in the window: {dict(locf='last observation carried forward', nri='non-responder imputation', none='missing (excluded)')[self.imputation]}"
        )


def _day_column(visits: pd.DataFrame) -> pd.Series:
    if "day" in visits.columns:
        return pd.to_numeric(visits["day"], errors="raise").astype(float)
    dates = pd.to_datetime(visits["date"])
    return (dates - pd.Timestamp("1970-01-01")).dt.days.astype(float)


def check_visits(visits: pd.DataFrame, *, source: str = "visits") -> None:
    """Check the columns and values endpoints need; errors name the row (index label) and column."""
    need = ["patient_id", "salt", "on_drug"]
    missing = [c for c in need if c not in visits.columns]
    if "day" not in visits.columns and "date" not in visits.columns:
        missing.append("date")
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}")
    salt = pd.to_numeric(visits["salt"], errors="coerce")
    bad = salt.notna() & ((salt < 0) | (salt > 100))
    if bad.any():
        row = visits.index[bad.to_numpy()][0]
        raise InputError(f"{source}: row {row}, column 'salt': SALT must be in [0, 100]; got {salt.loc[row]:g}")
    day = _day_column(visits)
    prev = day.groupby(visits["patient_id"]).shift()
    disorder = prev.notna() & (day <= prev)
    if disorder.any():
        row = visits.index[disorder.to_numpy()][0]
        col = "day" if "day" in visits.columns else "date"
        raise InputError(
            f"{source}: row {row}, column {col!r}: visits of patient {visits.loc[row, 'patient_id']!r} are out of "
            "date order (each visit must be later than the one before it)"
        )


def _one_patient(pid, rows, day, salt, on, s: EndpointSettings, source: str) -> dict:
    if not on.any():
        raise InputError(f"{source}: patient {pid!r} (rows {rows[0]}-{rows[-1]}): no on-drug visit (column 'on_drug')")
    i0 = int(np.argmax(on))
    index_day = day[i0]
    pre = np.flatnonzero((day <= index_day) & ~np.isnan(salt))
    if pre.size == 0:
        raise InputError(
            f"{source}: row {rows[i0]}, column 'salt': patient {pid!r} has no baseline SALT on or before "
            "the first on-drug visit"
        )
    b_i = pre[-1]
    base = salt[b_i]
    after = (day > index_day) & ~np.isnan(salt)
    # time to first response after the index date
    resp_all = meets(s.response, base, salt)
    hit = np.flatnonzero(after & (resp_all == 1))
    last_seen = day[after].max() if after.any() else index_day
    # treatment stop: last on-drug visit before the first off-drug visit after the index
    off_after = np.flatnonzero((day > index_day) & ~on)
    stop_i = (off_after[0] - 1) if off_after.size else None
    # assessment time point
    if s.landmark_days is None:
        cand = np.flatnonzero(on & ~np.isnan(salt) & (day >= index_day))
        a_i = cand[-1] if cand.size else b_i
        how = "end of treatment" if a_i != b_i else "baseline only"
    else:
        target = index_day + s.landmark_days
        win = np.flatnonzero(after & (np.abs(day - target) <= s.window_days))
        if win.size:
            a_i = win[np.argmin(np.abs(day[win] - target))]
            how = "observed"
        elif s.imputation == "locf":
            earlier = np.flatnonzero(~np.isnan(salt) & (day < target - s.window_days))
            a_i = earlier[-1] if earlier.size else b_i
            how = "locf"
        else:
            a_i, how = None, ("nri" if s.imputation == "nri" else "missing")
    cur = salt[a_i] if a_i is not None else np.nan
    relapse = relapse_day = np.nan
    if stop_i is not None and stop_i >= i0:
        at_stop = meets(s.response, base, salt[stop_i])
        later = np.flatnonzero((day > day[stop_i]) & ~on & ~np.isnan(salt))
        if at_stop == 1 and later.size:
            lost = later[meets(s.response, base, salt[later]) == 0]
            relapse = 1.0 if lost.size else 0.0
            relapse_day = day[lost[0]] - day[stop_i] if lost.size else day[later[-1]] - day[stop_i]
    return {
        "patient_id": pid,
        "index_day": index_day,
        "baseline_salt": base,
        "assessment": how,
        "assessment_day": (day[a_i] - index_day) if a_i is not None else np.nan,
        "salt": cur,
        "time_to_response_days": (day[hit[0]] - index_day) if hit.size else (last_seen - index_day),
        "response_event": 1 if hit.size else 0,
        "stop_day": (day[stop_i] - index_day) if stop_i is not None else np.nan,
        "relapse": relapse,
        "time_to_relapse_days": relapse_day,
    }


def patient_endpoints(
    visits: pd.DataFrame, settings: EndpointSettings | None = None, *, source: str = "visits"
) -> pd.DataFrame:
    """One row per patient: baseline, assessed SALT, every endpoint, the chosen ``responder``.

    Days are counted from the index date (first on-drug visit). ``assessment`` states how the
    value was obtained (observed, end of treatment, locf, nri, missing). ``relapse`` is defined for
    patients who met the response definition at their last on-drug visit and were seen off drug
    afterwards: 1 when a later off-drug visit no longer meets it (``time_to_relapse_days`` from
    the stop), else 0 (censored at the last off-drug visit).
    """
    s = settings or EndpointSettings()
    s.validate()
    check_visits(visits, source=source)
    codes, uniques = pd.factorize(visits["patient_id"])
    order = np.argsort(codes, kind="stable")  # patients in order of first appearance, visits in file order
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    day = _day_column(visits).to_numpy()[order]
    salt = pd.to_numeric(visits["salt"], errors="coerce").to_numpy(dtype=float)[order]
    on = pd.to_numeric(visits["on_drug"], errors="coerce").fillna(0).to_numpy(dtype=float)[order] > 0
    labels = visits.index.to_numpy()[order]
    rows = [
        _one_patient(uniques[codes[order[sl][0]]], labels[sl], day[sl], salt[sl], on[sl], s, source)
        for sl in (slice(a, b) for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(order)]))
    ]
    out = pd.DataFrame(rows)
    base, cur = out["baseline_salt"].to_numpy(), out["salt"].to_numpy()
    ends = pd.DataFrame({k: meets(k, base, cur) for k in RESPONSE_DEFINITIONS}, index=out.index)
    ends.insert(0, "regrowth_pct", percent_regrowth(base, cur))
    ends["responder"] = np.where(out["assessment"] == "nri", 0.0, ends[s.response])
    at = out.columns.get_loc("salt") + 1
    out = pd.concat([out.iloc[:, :at], ends, out.iloc[:, at:]], axis=1)
    out.attrs["definition"] = s.describe()
    return out


def endpoint_names() -> Sequence[str]:
    """The endpoint columns of :func:`patient_endpoints`."""
    return ("regrowth_pct", *RESPONSE_DEFINITIONS, "responder", "time_to_response_days", "relapse")


def attach_endpoints(patients: pd.DataFrame, endpoints: pd.DataFrame, *, source: str = "patients") -> pd.DataFrame:
    """Patients' baseline rows joined to their endpoints (one row each), keeping the patients' row labels.

    Every patient must have visits: one without is reported by row as a missing baseline.
    """
    ep = endpoints.set_index(endpoints["patient_id"].astype(str))
    ids = patients["patient_id"].astype(str)
    lost = ~ids.isin(ep.index)
    if lost.any():
        row = patients.index[lost.to_numpy()][0]
        raise InputError(
            f"{source}: row {row}, column 'patient_id': patient {ids.loc[row]!r} has no visits, so no "
            "baseline SALT (missing baseline)"
        )
    clash = [c for c in ep.columns if c in patients.columns and c != "patient_id"]
    if clash:
        raise InputError(f"{source}: columns {clash} clash with endpoint names; rename them")
    joined = ep.drop(columns="patient_id").loc[ids.to_numpy()]
    joined.index = patients.index
    return pd.concat([patients, joined], axis=1)
