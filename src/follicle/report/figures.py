"""Figures for the comparative-study report (matplotlib, no display needed).

Each function takes plain arrays or DataFrames and returns a matplotlib Figure; ``to_data_uri``
embeds one in a self-contained HTML page. Survival curves are drawn only while the number at
risk is at or above the minimum cell count, so a step cannot reveal a small count.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

TARGET_COLOUR = "#1b6ca8"
COMPARATOR_COLOUR = "#c0392b"


def to_data_uri(fig: Figure, fmt: str = "png", dpi: int = 110, *, tight: bool = True) -> str:
    """The figure as a ``data:`` URI (PNG or SVG), closing it afterwards.

    ``tight`` crops to the drawn content (a second draw); figures with a fixed layout skip it.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None,
                metadata={"Software": None} if fmt == "png" else None)
    plt.close(fig)
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"


def love_plot(balance: pd.DataFrame, threshold: float = 0.1, max_rows: int = 40, *,
              after_label: str = "after matching") -> Figure:
    """Absolute SMD per covariate before and after adjustment (columns covariate, smd_before, smd_after);
    the *max_rows* covariates least balanced before are shown."""
    data = balance.assign(before=balance["smd_before"].abs(), after=balance["smd_after"].abs())
    data = data.sort_values("before", ascending=True).tail(max_rows)
    height = max(2.5, 0.22 * len(data) + 1.0)
    fig, ax = plt.subplots(figsize=(6.5, height))
    y = np.arange(len(data))
    ax.scatter(data["before"], y, marker="o", facecolors="none", edgecolors="grey", label="before adjustment")
    ax.scatter(data["after"], y, marker="o", color=TARGET_COLOUR, label=after_label)
    ax.axvline(threshold, color="black", lw=0.8, ls="--")
    names = [c if len(c) <= 48 else c[:45] + "..." for c in data["covariate"].astype(str)]
    ax.set_yticks(y, names, fontsize=7)
    ax.set_xlabel("absolute standardised mean difference")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xlim(left=0)
    fig.tight_layout()
    return fig


def preference_plot(bins: list[dict], labels: tuple[str, str]) -> Figure:
    """Distribution of the preference score by arm, drawn from protected histogram rows (``arm``,
    ``bin_low``, ``bin_high``, ``density``; see :func:`follicle.run.curves.preference_bins`: counts
    rounded up to multiples of the minimum cell count), with the 0.3-0.7 equipoise band shaded."""
    fig, ax = plt.subplots(figsize=(6.0, 3.2))
    drawn = False
    for arm, colour in ((labels[0], TARGET_COLOUR), (labels[1], COMPARATOR_COLOUR)):
        rows = [b for b in bins if b["arm"] == arm]
        if rows and any(b["density"] for b in rows):
            drawn = True
            ax.bar([b["bin_low"] for b in rows], [b["density"] for b in rows],
                   width=[b["bin_high"] - b["bin_low"] for b in rows], align="edge", alpha=0.45, color=colour,
                   label=arm)
    ax.axvspan(0.3, 0.7, color="grey", alpha=0.12, lw=0)
    ax.set_xlim(0, 1)
    ax.set_xlabel("preference score")
    ax.set_ylabel("density")
    if drawn:
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def km_plot(
    curves: dict[str, pd.DataFrame],
    at_risk: pd.DataFrame,
    *,
    title: str,
    min_cell_count: int = 10,
    colours: tuple[str, str] = (TARGET_COLOUR, COMPARATOR_COLOUR),
) -> Figure:
    """Kaplan-Meier cumulative incidence (1 - S) with CIs and a numbers-at-risk table.

    *curves* maps arm label -> frame with columns ``time, survival, ci_low, ci_high, at_risk``;
    *at_risk* has one row per arm and one column per time tick holding the (already suppressed)
    number at risk as text.
    """
    fig, (ax, tab) = plt.subplots(2, 1, figsize=(6.2, 4.6), gridspec_kw={"height_ratios": [3.4, 1.2]})
    for (label, curve), colour in zip(curves.items(), colours):
        shown = curve[curve["at_risk"] >= min_cell_count]
        if shown.empty:
            continue
        t = shown["time"].to_numpy() / 365.25
        ax.step(t, 1 - shown["survival"], where="post", color=colour, label=label)
        ax.fill_between(t, 1 - shown["ci_high"], 1 - shown["ci_low"], step="post", color=colour, alpha=0.15, lw=0)
    ax.set_ylabel("cumulative incidence")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ticks = [float(c) for c in at_risk.columns]
    last = max(ticks) if ticks else 0.0
    if last > 0:
        ax.set_xlim(0, last / 365.25)
    ax.set_xticks([t / 365.25 for t in ticks], [f"{t / 365.25:g}" for t in ticks])
    ax.set_xlabel("years since the start of the time at risk")
    tab.axis("off")
    tab.set_xlim(0, 1)
    for row, (label, values) in enumerate(at_risk.iterrows()):
        y = 0.80 - 0.48 * row
        tab.text(0, y, f"number at risk: {label}", ha="left", va="center", fontsize=7, color=colours[row % 2],
                 transform=tab.transAxes)
        for t, value in zip(ticks, values):
            tab.text(t / last if last else 0, y - 0.22, str(value), ha="center", va="center", fontsize=7,
                     transform=tab.transAxes)
    # a fixed layout (no tight_layout): these figures are drawn by the dozen, and it halves the cost;
    # the table axes share the plot's horizontal extent so the numbers sit under their ticks
    fig.subplots_adjust(left=0.12, right=0.96, top=0.93, bottom=0.03, hspace=0.38)
    return fig
