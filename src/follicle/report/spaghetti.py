"""Spaghetti plot: each patient's SALT over time, on drug (solid) and off drug (dashed).

The course on and off drug is what a pilot trial shows (mission.md section 5: 3-6 months of
ruxolitinib, then 3 months off). Days are counted from each patient's first on-drug visit; the
band between the earliest and latest treatment stop is shaded, and SALT 20 (the BRAVE-AA
response threshold, clinical.md section 2.2) is drawn for reference.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _days(visits: pd.DataFrame) -> pd.Series:
    if "day" in visits.columns:
        return visits["day"].astype(float)
    return (pd.to_datetime(visits["date"]) - pd.Timestamp("1970-01-01")).dt.days.astype(float)


def spaghetti_figure(visits: pd.DataFrame, *, title: str = "SALT over time") -> plt.Figure:
    """A matplotlib figure of SALT by day since the first on-drug visit, one line per patient."""
    v = visits.assign(_day=_days(visits)).dropna(subset=["salt"])
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    stops = []
    for _, g in v.groupby("patient_id", sort=False):
        on = g["on_drug"].to_numpy() > 0
        if not on.any():
            continue
        t = g["_day"].to_numpy() - g["_day"].to_numpy()[np.argmax(on)]
        y = g["salt"].to_numpy(dtype=float)
        line = None
        for i in range(len(t) - 1):
            style = "-" if on[i] and on[i + 1] else "--"
            kw = {"color": line.get_color()} if line is not None else {}
            (seg,) = ax.plot(t[i : i + 2], y[i : i + 2], style, lw=1.2, alpha=0.8, **kw)
            line = line or seg
        ax.plot(t, y, "o", ms=3, color=line.get_color() if line else "k", alpha=0.8)
        off_after = np.flatnonzero(~on & (t > 0))
        if off_after.size:
            stops.append(t[off_after[0] - 1])
    if stops:
        ax.axvspan(min(stops), ax.get_xlim()[1], color="0.9", zorder=0, label="off drug (after earliest stop)")
    ax.axhline(20, color="0.4", lw=0.8, ls=":", label="SALT 20")
    ax.set_xlabel("days since first on-drug visit")
    ax.set_ylabel("SALT (% scalp hair loss)")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.plot([], [], "k-", label="on drug")
    ax.plot([], [], "k--", label="off drug")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def write_spaghetti(visits: pd.DataFrame, path: str | Path, *, title: str = "SALT over time") -> Path:
    """Save the spaghetti plot to *path* (PNG, SVG or PDF by suffix), atomically."""
    path = Path(path)
    fig = spaghetti_figure(visits, title=title)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
