"""Follow-up summaries: mean and median observed follow-up, person-time, reverse-KM median.

The observed median understates follow-up when many have the event early; the reverse
Kaplan-Meier median (censoring treated as the event) estimates potential follow-up and is the
figure usually reported alongside survival curves.

References
----------
Schemper M, Smith TL. A note on quantifying follow-up in studies of failure time.
Control Clin Trials 1996;17:343-346.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from follicle.survival._inputs import as_groups, as_time_event
from follicle.survival.kaplan_meier import kaplan_meier


@dataclass(frozen=True)
class FollowUp:
    """Follow-up of one group, in the units of the input times (person_time in the same units)."""

    n: int
    events: int
    person_time: float
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    min: float
    max: float
    median_reverse_km: float
    median_reverse_km_ci_low: float
    median_reverse_km_ci_high: float


def followup_summary(time: Any, event: Any) -> FollowUp:
    """Mean, median (IQR) and reverse-KM median follow-up of one group."""
    t, e = as_time_event(time, event)
    rev = kaplan_meier(t, ~e, conf_type="log")  # R survfit default conf.type for the reverse KM
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return FollowUp(
        n=len(t), events=int(e.sum()), person_time=float(t.sum()), mean=float(t.mean()),
        sd=float(t.std(ddof=1)) if len(t) > 1 else float("nan"), median=float(med), q1=float(q1), q3=float(q3),
        min=float(t.min()), max=float(t.max()), median_reverse_km=rev.median,
        median_reverse_km_ci_low=rev.median_ci_low, median_reverse_km_ci_high=rev.median_ci_high,
    )


def followup_by_group(time: Any, event: Any, group: Any) -> pd.DataFrame:
    """:func:`followup_summary` per group, one row each (index: group label)."""
    t, e = as_time_event(time, event)
    codes, labels = as_groups(group, len(t), min_groups=1)
    rows = {lab: followup_summary(t[codes == k], e[codes == k]).__dict__ for k, lab in enumerate(labels)}
    return pd.DataFrame.from_dict(rows, orient="index")
