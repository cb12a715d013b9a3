"""Safety: incidence rates per 100 patient-years with exact Poisson CIs, by event type.

Integrated safety analyses of JAK inhibitors report rates per 100 patient-years of exposure
(mission.md section 4: baricitinib in AA, 1,868 PY, herpes zoster 1.8 per 100 PY, 34 cases).

References
----------
Garwood F. Fiducial limits for the Poisson distribution. Biometrika 1936;28:437-442.
King B et al. Long-term safety of baricitinib in alopecia areata. (integrated analysis; the
figures as quoted in mission.md section 4).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from follicle.errors import InputError
from follicle.survival.rates import incidence_rate

RATE_COLUMNS = ["event_type", "events", "person_years", "rate", "ci_low", "ci_high", "per", "conf_level"]


def rate_table(
    counts: Mapping[str, int],
    person_years: float | Mapping[str, float],
    *,
    per: float = 100.0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Incidence rate and exact CI for each event type.

    *person_years* is one total exposure shared by every event type, or one value per type
    (exposure at risk can differ by type when follow-up is censored at the first event).
    """
    rows = []
    for etype, n in counts.items():
        py = person_years[etype] if isinstance(person_years, Mapping) else person_years
        ir = incidence_rate(int(n), float(py), per=per, conf_level=conf_level)
        rows.append([etype, ir.events, ir.person_years, ir.rate, ir.ci_low, ir.ci_high, per, conf_level])
    return pd.DataFrame(rows, columns=RATE_COLUMNS)


def exposure_years(exposure: pd.DataFrame, *, source: str = "exposure") -> pd.Series:
    """Patient-years of exposure per patient from ``patient_id, start_date, end_date`` rows.

    A period counts ``end - start + 1`` days (both days exposed) over 365.25 days per year.
    """
    start = pd.to_datetime(exposure["start_date"])
    end = pd.to_datetime(exposure["end_date"])
    bad = end < start
    if bad.any():
        row = exposure.index[bad.to_numpy()][0]
        raise InputError(
            f"{source}: row {row}, column 'end_date': end {end.loc[row].date()} is before start "
            f"{start.loc[row].date()} (dates out of order)"
        )
    days = (end - start).dt.days + 1
    return (days / 365.25).groupby(exposure["patient_id"]).sum()


def count_events(
    events: pd.DataFrame,
    exposure: pd.DataFrame | None = None,
    *,
    count: str = "events",
) -> dict[str, int]:
    """Events per type from patient-level rows (``patient_id, event_type[, date]``).

    With *exposure*, only events dated within a patient's exposure periods count.
    ``count="patients"`` counts patients with at least one event of the type instead of events.
    """
    if count not in ("events", "patients"):
        raise ValueError(f"count must be 'events' or 'patients'; got {count!r}")
    ev = events.dropna(subset=["event_type"])
    ev = ev[ev["event_type"].astype(str).str.strip() != ""]
    if exposure is not None:
        if "date" not in ev.columns:
            raise InputError("events: a 'date' column is needed to match events to exposure periods")
        d = pd.to_datetime(ev["date"])
        inside = np.zeros(len(ev), dtype=bool)
        merged = ev.assign(_d=d.to_numpy(), _i=np.arange(len(ev))).merge(
            exposure.assign(_s=pd.to_datetime(exposure["start_date"]), _e=pd.to_datetime(exposure["end_date"]))[
                ["patient_id", "_s", "_e"]
            ],
            on="patient_id",
        )
        hit = merged[(merged._d >= merged._s) & (merged._d <= merged._e)]["_i"].unique()
        inside[hit] = True
        ev = ev[inside]
    if count == "patients":
        grouped = ev.groupby("event_type")["patient_id"].nunique()
    else:
        grouped = ev.groupby("event_type").size()
    return {str(k): int(v) for k, v in grouped.sort_index().items()}


def safety_rates(
    events: pd.DataFrame,
    *,
    person_years: float | None = None,
    exposure: pd.DataFrame | None = None,
    count: str = "events",
    event_types: list[str] | None = None,
    per: float = 100.0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Rates per *per* patient-years by event type from patient-level events.

    Exposure comes from *exposure* periods (summed) or a given total *person_years*. Event types
    listed in *event_types* but absent from the data are reported with 0 events (an exact upper
    limit is still informative).
    """
    if (person_years is None) == (exposure is None):
        raise InputError("give exactly one of person_years or an exposure table")
    total = float(exposure_years(exposure).sum()) if exposure is not None else float(person_years)
    counts = count_events(events, exposure, count=count)
    for et in event_types or []:
        counts.setdefault(et, 0)
    return rate_table(dict(sorted(counts.items())), total, per=per, conf_level=conf_level)
