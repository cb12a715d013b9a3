"""Funnel plot (matplotlib): study estimates against their standard errors (inverted axis).

Pseudo 95% confidence limits ``mu +/- 1.96 se`` around the pooled estimate, as in metafor's
``funnel`` (Sterne & Egger 2001); studies filled in by trim-and-fill drawn as open circles.

References
----------
Sterne JAC, Egger M. Funnel plots for detecting bias in meta-analysis: guidelines on choice of
    axis. J Clin Epidemiol 2001;54:1046-55.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.stats import norm  # noqa: E402


def funnel_plot(
    yi: Sequence[float],
    sei: Sequence[float],
    *,
    estimate: float,
    xlabel: str = "Effect (analysis scale)",
    filled_yi: Sequence[float] = (),
    filled_sei: Sequence[float] = (),
    filled_estimate: float | None = None,
    level: float = 0.95,
    title: str | None = None,
) -> Figure:
    """Draw a funnel plot; save it with :func:`follicle.report.forest.save_figure`."""
    y = np.asarray(yi, float)
    s = np.asarray(sei, float)
    fy = np.asarray(filled_yi, float)
    fs = np.asarray(filled_sei, float)
    z = norm.isf((1 - level) / 2)
    smax = float(max(s.max(), fs.max() if fs.size else 0.0)) * 1.1
    fig, ax = plt.subplots(figsize=(6.0, 4.8), dpi=150)
    se_grid = np.linspace(0, smax, 50)
    ax.fill_betweenx(se_grid, estimate - z * se_grid, estimate + z * se_grid, color="0.93", zorder=0)
    ax.plot(estimate - z * se_grid, se_grid, color="0.5", lw=0.8, ls="--")
    ax.plot(estimate + z * se_grid, se_grid, color="0.5", lw=0.8, ls="--")
    ax.axvline(estimate, color="#b03a2e", lw=1.0, label="pooled estimate")
    ax.scatter(y, s, s=28, color="#2b5d8a", edgecolor="black", lw=0.5, zorder=3, label="studies")
    if fy.size:
        ax.scatter(fy, fs, s=28, facecolor="white", edgecolor="black", lw=0.8, zorder=3,
                   label="filled (trim-and-fill)")
        if filled_estimate is not None:
            ax.axvline(filled_estimate, color="#b03a2e", lw=1.0, ls=":", label="adjusted estimate")
    ax.set_ylim(smax, 0)
    ax.set_ylabel("Standard error", fontsize=9)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig
