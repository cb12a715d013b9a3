"""Forest plots (matplotlib): study rows, weights, pooled diamonds, prediction-interval bars.

Generic: a plot is a list of :class:`ForestRow` (label, estimate, CI on the display scale,
optional weight), so the same function draws a meta-analysis or a column of hazard ratios
across outcomes. Ratio measures use a log axis with the reference line at 1.

:func:`save_figure` writes PNG or SVG atomically (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

RowKind = Literal["study", "summary", "header", "note"]


@dataclass(frozen=True)
class ForestRow:
    """One line of a forest plot, values on the display scale (e.g. OR, not log OR)."""

    label: str
    estimate: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    weight: float | None = None  # percent
    kind: RowKind = "study"
    pi_low: float | None = None  # prediction interval (summary rows)
    pi_high: float | None = None
    note: str = ""  # right-hand text instead of "est [lo, hi]" (e.g. "k = 3, I² = 40%")


def rows_from_meta(result: object, *, summary_label: str | None = None, exp: bool | None = None) -> list[ForestRow]:
    """Rows for a :class:`follicle.synthesis.pooling.MetaResult`: one per study and a diamond."""
    from scipy.stats import norm

    res = result  # MetaResult, typed loosely to keep report/ free of a synthesis import cycle
    use_exp = res.is_ratio if exp is None else exp  # type: ignore[attr-defined]
    tr = np.exp if use_exp else (lambda v: v)
    z = norm.isf((1 - res.level) / 2)  # type: ignore[attr-defined]
    rows = []
    shown = {lab: (y, v, w) for lab, y, v, w in zip(res.labels, res.yi, res.vi, res.weights)}  # type: ignore[attr-defined]
    order = getattr(res, "input_labels", None) or list(shown)
    for lab in order:
        if lab not in shown:  # dropped from the fit (double-zero study): listed, not drawn
            rows.append(ForestRow(lab, note="not estimable (no events in either arm)"))
            continue
        y, v, w = shown[lab]
        se = math.sqrt(v)
        rows.append(ForestRow(lab, float(tr(y)), float(tr(y - z * se)), float(tr(y + z * se)), weight=w))
    label = summary_label or _method_label(res)
    if not np.isfinite(res.estimate):  # type: ignore[attr-defined]
        rows.append(ForestRow(label, kind="summary", note="not estimable"))
        return rows
    has_pi = res.tau2 > 0  # type: ignore[attr-defined]
    rows.append(
        ForestRow(
            label,
            float(tr(res.estimate)),  # type: ignore[attr-defined]
            float(tr(res.ci_low)),  # type: ignore[attr-defined]
            float(tr(res.ci_high)),  # type: ignore[attr-defined]
            weight=100.0,
            kind="summary",
            pi_low=float(tr(res.pi_low)) if has_pi else None,  # type: ignore[attr-defined]
            pi_high=float(tr(res.pi_high)) if has_pi else None,  # type: ignore[attr-defined]
        )
    )
    return rows


def _method_label(res: object) -> str:
    m = res.method  # type: ignore[attr-defined]
    if m in ("EE", "MH", "PETO"):
        name = {"EE": "Common effect (IV)", "MH": "Common effect (MH)", "PETO": "Common effect (Peto)"}[m]
    else:
        name = f"Random effects ({m}{', HK' if res.knha else ''})"  # type: ignore[attr-defined]
    return name


def heterogeneity_note(res: object) -> str:
    """'Heterogeneity: tau² = ..; I² = ..%; Q = .. (df ..), p = ..' for a plot footer."""
    p = res.q_p  # type: ignore[attr-defined]
    ptxt = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    return (
        f"Heterogeneity: \u03c4\u00b2 = {res.tau2:.3f}; I\u00b2 = {res.i2:.0f}%; "  # type: ignore[attr-defined]
        f"Q = {res.q:.2f} (df = {res.q_df}), {ptxt}"  # type: ignore[attr-defined]
    )


def spec_rows(out: dict, study_groups: dict[str, str] | None = None, note: str = "") -> tuple[list[ForestRow], str]:
    """Rows and footer of the forest plot of a meta-analysis spec's results (:func:`follicle.synthesis.spec.run_spec`):
    one block per subgroup (studies, then a subtotal) when the spec has subgroups, then the overall diamond.

    *study_groups* maps each study label to its subgroup (needed for groups of one study).
    """
    overall = out["overall"]
    rows: list[ForestRow] = []
    if "subgroups" in out and out["subgroups"].get("estimable", True):
        sg = out["subgroups"]
        by_label = {r.label: r for r in rows_from_meta(overall)[:-1]}
        groups = list(sg["groups"]) + list(sg["single_study_groups"])
        labels_by_group = {g: r.labels for g, r in sg["groups"].items()}
        for g in groups:
            rows.append(ForestRow(str(g), kind="header"))
            members = labels_by_group.get(g) or [s for s, gg in (study_groups or {}).items() if gg == g]
            total_w = sum(by_label[s].weight or 0 for s in members if s in by_label)
            rows += [dataclasses.replace(by_label[s]) for s in members if s in by_label]
            if g in sg["groups"]:
                sub = rows_from_meta(sg["groups"][g], summary_label=f"Subtotal ({len(members)} comparisons)")[-1]
                rows.append(dataclasses.replace(sub, weight=total_w))
        rows.append(rows_from_meta(overall)[-1])
        p = sg["pval"]
        footer = (heterogeneity_note(overall) + f"\nTest for subgroup differences: Q = {sg['q_between']:.2f} "
                  f"(df = {sg['df']}), p = {p:.3f}")
    else:
        rows = rows_from_meta(overall)
        footer = heterogeneity_note(overall)
    if note:
        footer += "\n" + note
    return rows, footer


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "NA"
    a = abs(v)
    return f"{v:.2f}" if a < 100 else f"{v:.0f}" if a < 1e5 else f"{v:.1e}"


def forest_plot(
    rows: Sequence[ForestRow],
    *,
    log_scale: bool = False,
    xlabel: str = "",
    title: str | None = None,
    label_header: str = "Study",
    estimate_header: str = "Estimate [95% CI]",
    favours: tuple[str, str] | None = None,
    footer: str | None = None,
    show_weights: bool | None = None,
    xlim: tuple[float, float] | None = None,
) -> Figure:
    """Draw a forest plot and return the figure (save it with :func:`save_figure`).

    Parameters
    ----------
    rows : rows top to bottom; "summary" rows are diamonds (with a prediction-interval bar
        when ``pi_low``/``pi_high`` are set), "header" rows bold text, "note" rows text only.
    log_scale : log x axis (ratio measures); reference line at 1, else at 0.
    favours : labels under the axis, left and right of the reference line.
    """
    rows = list(rows)
    if show_weights is None:
        show_weights = any(r.weight is not None and r.kind == "study" for r in rows)
    n = len(rows)
    foot_h = 0.17 * (footer.count("\n") + 1) + 0.05 if footer else 0.0
    height = 1.2 + 0.3 * (n + 1) + foot_h + (0.35 if favours else 0)
    fig = plt.figure(figsize=(10.5, height), dpi=150)
    top = 1 - 0.45 / height - (0.3 / height if title else 0)
    bottom = (0.75 + foot_h + (0.3 if favours else 0)) / height
    ax = fig.add_axes((0.36, bottom, 0.33, top - bottom))
    ax.set_ylim(n - 0.5, -1.0)
    ys = np.arange(n)

    # Axis range: study intervals and summary point estimates; the last summary row (the overall
    # result) in full. Wider subgroup intervals are clipped and marked with arrows.
    summaries = [r for r in rows if r.kind == "summary"]
    vals = [v for r in rows if r.kind == "study" for v in (r.ci_low, r.ci_high)]
    vals += [r.estimate for r in summaries]
    if summaries:
        last = summaries[-1]
        vals += [last.ci_low, last.ci_high, last.pi_low, last.pi_high]
    finite = [v for v in vals if v is not None and np.isfinite(v) and (v > 0 or not log_scale)]
    ref = 1.0 if log_scale else 0.0
    if xlim is None and finite:
        lo, hi = min(finite + [ref]), max(finite + [ref])
        if log_scale:
            span = math.log(hi / lo) or 1.0
            xlim = (lo / math.exp(0.05 * span), hi * math.exp(0.05 * span))
        else:
            pad = 0.05 * ((hi - lo) or 1.0)
            xlim = (lo - pad, hi + pad)
    if log_scale:
        ax.set_xscale("log")
    if xlim:
        ax.set_xlim(*xlim)
    ax.axvline(ref, color="0.35", lw=0.8, zorder=1)

    max_w = max([r.weight for r in rows if r.kind == "study" and r.weight] or [1.0])
    for y, r in zip(ys, rows):
        if r.kind == "study" and np.isfinite(r.estimate):
            lo_c, hi_c = r.ci_low, r.ci_high
            clipped_lo = xlim is not None and lo_c < xlim[0]
            clipped_hi = xlim is not None and hi_c > xlim[1]
            ax.plot([max(lo_c, xlim[0]) if xlim else lo_c, min(hi_c, xlim[1]) if xlim else hi_c], [y, y],
                    color="black", lw=1.0, zorder=2)
            if clipped_lo:
                ax.plot(xlim[0], y, marker="<", ms=5, color="black", zorder=3, clip_on=False)
            if clipped_hi:
                ax.plot(xlim[1], y, marker=">", ms=5, color="black", zorder=3, clip_on=False)
            size = 4 + 8 * math.sqrt((r.weight or max_w) / max_w)
            ax.plot(r.estimate, y, marker="s", ms=size, color="#2b5d8a", mec="#1b3d5a", zorder=3)
        elif r.kind == "summary" and np.isfinite(r.estimate):
            h = 0.32
            poly = Polygon(
                [(r.ci_low, y), (r.estimate, y - h), (r.ci_high, y), (r.estimate, y + h)],
                closed=True, facecolor="#b03a2e", edgecolor="#7b241c", zorder=3,
            )
            ax.add_patch(poly)
            if xlim is not None and r.ci_low < xlim[0]:
                ax.plot(xlim[0], y, marker="<", ms=6, color="#7b241c", zorder=4, clip_on=False)
            if xlim is not None and r.ci_high > xlim[1]:
                ax.plot(xlim[1], y, marker=">", ms=6, color="#7b241c", zorder=4, clip_on=False)
            if r.pi_low is not None and r.pi_high is not None:
                ax.plot([r.pi_low, r.ci_low], [y, y], color="#b03a2e", lw=2.2, zorder=2, solid_capstyle="butt")
                ax.plot([r.ci_high, r.pi_high], [y, y], color="#b03a2e", lw=2.2, zorder=2, solid_capstyle="butt")
                ax.plot([r.pi_low, r.pi_low], [y - 0.12, y + 0.12], color="#b03a2e", lw=1.2)
                ax.plot([r.pi_high, r.pi_high], [y - 0.12, y + 0.12], color="#b03a2e", lw=1.2)

    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    if log_scale:
        _log_ticks(ax)

    tr = blended_transform_factory(fig.transFigure, ax.transData)
    x_label, x_est, x_w = 0.02, 0.71, 0.93
    head_y = -0.9
    ax.text(x_label, head_y, label_header, transform=tr, fontsize=9, fontweight="bold", va="center")
    ax.text(x_est, head_y, estimate_header, transform=tr, fontsize=9, fontweight="bold", va="center")
    if show_weights:
        ax.text(x_w, head_y, "Weight", transform=tr, fontsize=9, fontweight="bold", va="center")
    for y, r in zip(ys, rows):
        bold = r.kind in ("summary", "header")
        indent = 0.0 if r.kind in ("header", "summary", "note") else 0.01
        italic = "italic" if r.kind == "note" else "normal"
        ax.text(x_label + indent, y, _shorten(r.label, 46), transform=tr, fontsize=8.5, va="center",
                fontweight="bold" if bold else "normal", style=italic)
        if r.note:
            ax.text(x_est, y, r.note, transform=tr, fontsize=8, va="center", style="italic")
        elif r.kind in ("study", "summary") and np.isfinite(r.estimate):
            txt = f"{_fmt(r.estimate)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
            ax.text(x_est, y, txt, transform=tr, fontsize=8.5, va="center",
                    fontweight="bold" if bold else "normal", family="DejaVu Sans Mono")
            if r.kind == "summary" and r.pi_low is not None and r.pi_high is not None:
                ax.text(x_est, y + 0.42, f"PI [{_fmt(r.pi_low)}, {_fmt(r.pi_high)}]", transform=tr,
                        fontsize=7, va="center", color="#7b241c", family="DejaVu Sans Mono")
            if show_weights and r.weight is not None:
                ax.text(x_w, y, f"{r.weight:.1f}%", transform=tr, fontsize=8.5, va="center",
                        fontweight="bold" if bold else "normal", family="DejaVu Sans Mono")
    if title:
        fig.text(0.02, 1 - 0.3 / height, title, fontsize=11, fontweight="bold", va="center")
    if favours:
        fy = (0.42 + foot_h) / height
        left_x = 0.36 + 0.33 * _frac(ax, ref) - 0.01
        fig.text(left_x, fy, f"\u2190 {favours[0]}", ha="right", fontsize=8)
        fig.text(left_x + 0.02, fy, f"{favours[1]} \u2192", ha="left", fontsize=8)
    if footer:
        fig.text(0.02, 0.12 / height, footer, fontsize=8, va="bottom", linespacing=1.4)
    return fig


def _frac(ax: plt.Axes, x: float) -> float:
    """Position of data value *x* as a fraction of the axes width."""
    disp = ax.transData.transform((x, 0))[0]
    x0, x1 = ax.transAxes.transform((0, 0))[0], ax.transAxes.transform((1, 0))[0]
    return (disp - x0) / (x1 - x0)


def _log_ticks(ax: plt.Axes) -> None:
    lo, hi = ax.get_xlim()
    if math.log10(hi / lo) > 2.5:
        cands = [10.0**e for e in range(-4, 7)]
    elif math.log10(hi / lo) > 1.2:
        cands = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]
    else:
        cands = [0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.75, 1, 1.25, 1.5, 2, 3, 4, 5, 10]
    ticks = [t for t in cands if lo <= t <= hi]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save_figures(figures: dict[Path, Figure]) -> list[Path]:
    """Write each figure (PNG or SVG by suffix) to a temporary file beside its target, then rename
    them all; on any failure nothing is left behind and no target is touched."""
    paths = [Path(p) for p in figures]
    for path in paths:
        if path.suffix.lower() not in (".png", ".svg"):
            raise ValueError(f"figure path must end in .png or .svg; got {path.name!r}")
    temps: list[tuple[str, Path]] = []
    try:
        for path, fig in zip(paths, figures.values()):
            fmt = path.suffix.lower().lstrip(".")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=f".{fmt}", dir=path.parent)
            os.close(fd)
            temps.append((tmp, path))
            fig.savefig(tmp, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
            os.chmod(tmp, _umask_mode())
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        for fig in figures.values():
            plt.close(fig)
    return paths


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write *fig* as PNG or SVG (by suffix) to a temporary file, then rename it into place."""
    return save_figures({Path(path): fig})[0]
