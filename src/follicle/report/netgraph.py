"""Figures of a network meta-analysis: the network graph and the forest plot against the reference.

The network graph places treatments on a circle (netmeta's default start layout), draws an edge for
every pair compared directly with its width growing with the number of studies (labelled), shades
each multi-arm design as a polygon (netmeta ``multiarm = TRUE``) and scales nodes by participants
when arm sizes are known. The forest plot shows every treatment against the reference for the
random-effects and common-effect models (netmeta ``forest.netmeta``), back-transformed for ratios.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from follicle.report.forest import ForestRow, forest_plot  # noqa: E402

MULTIARM_COLOURS = ("#8fb9d8", "#f0b27a", "#a9dfbf", "#d7bde2", "#f9e79f", "#f5b7b1")
_XLABEL = {"OR": "Odds ratio", "RR": "Risk ratio", "RD": "Risk difference", "MD": "Mean difference",
           "SMD": "Standardised mean difference (Cohen's d)"}


def network_graph(
    treatments: list[str],
    edges: dict[tuple[str, str], int],
    *,
    multiarm: list[list[str]] | None = None,
    participants: dict[str, int] | None = None,
    reference: str | None = None,
    title: str | None = None,
) -> Figure:
    """Draw the network: *edges* maps a pair of treatments to its number of studies."""
    n = len(treatments)
    order = list(treatments)
    if reference in order:  # reference at the top of the circle
        i = order.index(reference)
        order = order[i:] + order[:i]
    ang = {t: math.pi / 2 - 2 * math.pi * k / max(n, 1) for k, t in enumerate(order)}
    pos = {t: (math.cos(a), math.sin(a)) for t, a in ang.items()}
    fig, ax = plt.subplots(figsize=(7.0, 6.4), dpi=150)
    for c, design in enumerate(multiarm or []):
        pts = sorted((pos[t] for t in design), key=lambda p: math.atan2(p[1], p[0]))
        ax.add_patch(Polygon(pts, closed=True, facecolor=MULTIARM_COLOURS[c % len(MULTIARM_COLOURS)], alpha=0.35,
                             edgecolor="none", zorder=1))
    kmax = max(edges.values()) if edges else 1
    for (a, b), k in edges.items():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax.plot([x1, x2], [y1, y2], color="#34495e", lw=1.0 + 5.0 * math.sqrt(k / kmax), zorder=2,
                solid_capstyle="round")
        ax.text((x1 + x2) / 2, (y1 + y2) / 2, str(k), fontsize=7, ha="center", va="center", zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    pmax = max(participants.values()) if participants else None
    for t in order:
        x, y = pos[t]
        size = 60 + 440 * math.sqrt(participants[t] / pmax) if participants and pmax and t in participants else 120
        colour = "#b03a2e" if t == reference else "#2b5d8a"
        ax.scatter([x], [y], s=size, color=colour, zorder=3, edgecolors="white", linewidths=1.0)
        lx, ly = 1.17 * x, 1.17 * y
        ha = "center" if abs(x) < 0.2 else ("left" if x > 0 else "right")
        label = t if participants is None or t not in participants else f"{t}\n(n = {participants[t]:,})"
        ax.text(lx, ly, label, fontsize=8, ha=ha, va="center", zorder=5)
    ax.set_xlim(-2.0, 2.0)
    ax.set_ylim(-1.45, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    note = "edge width and label: number of studies; shaded: multi-arm designs"
    if participants:
        note += "; node size: participants"
    fig.text(0.02, 0.02, note, fontsize=7, color="0.35")
    if title:
        ax.set_title(title, fontsize=10, fontweight="bold")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.93, bottom=0.06)
    return fig


def graph_from_results(out: dict[str, Any], title: str | None = None) -> Figure:
    """Network graph from the JSON-ready results of :func:`follicle.synthesis.nma.analyse` (plus ``edges``)."""
    edges = {(e["treat1"], e["treat2"]): e["k"] for e in out["edges"]}
    multi = [d.split(":") for d in out["designs"] if d.count(":") >= 2]
    return network_graph(out["treatments"], edges, multiarm=multi, participants=out.get("participants"),
                         reference=out["reference"], title=title)


def nma_forest(out: dict[str, Any], *, title: str | None = None, favours: tuple[str, str] | None = None) -> Figure:
    """Forest plot of every treatment against the reference, random-effects then common-effect model."""
    ratio = out["scale"] == "log"
    tr = np.exp if ratio else (lambda v: v)
    rows: list[ForestRow] = []
    for model, label in (("random", "Random effects model"), ("common", "Common effect model")):
        rows.append(ForestRow(label, kind="header"))
        effects = sorted(out[model]["effects"], key=lambda e: -e["estimate"])
        for e in effects:
            rows.append(ForestRow(e["treatment"], float(tr(e["estimate"])), float(tr(e["ci_low"])),
                                  float(tr(e["ci_high"]))))
    het = out["heterogeneity"]
    tau2 = "NA" if het["tau2"] is None or not np.isfinite(het["tau2"]) else f"{het['tau2']:.4g}"
    i2 = "NA" if het["i2"] is None or not np.isfinite(het["i2"]) else f"{100 * het['i2']:.1f}%"
    footer = (f"Comparison: other treatments vs '{out['reference']}'. Heterogeneity: tau\u00b2 = {tau2}, "
              f"I\u00b2 = {i2}, Q = {het['q']:.2f} (df = {het['df']})")
    return forest_plot(rows, log_scale=ratio, xlabel=_XLABEL.get(out["measure"], "Estimate"), title=title,
                       label_header="Treatment", estimate_header=f"{out['measure']} [95% CI]", favours=favours,
                       footer=footer, show_weights=False)
