"""Kaplan-Meier cumulative incidence as SVG with CI bands and a numbers-at-risk table.

The curves come already protected (rounded counts, or cut where fewer than ``min_cell_count``
are at risk) from the run's ``km`` table; this module only draws them. Hovering (or the arrow
keys on the focused plot) shows each arm's cumulative incidence, CI and number at risk.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from markupsafe import Markup

from follicle.report.svg.axes import PALETTE, Scale, esc, figure, nice_ticks, num, svg, tick_text, y_axis, zoom_range

DAYS_PER_YEAR = 365.25
X0, X1, Y0, Y1, WIDTH = 78.0, 740.0, 24.0, 300.0, 760.0


@dataclass
class Arm:
    """One arm's curve: step times (days), survival and its CI, numbers at risk, and the at-risk table row."""

    name: str
    time: list[float]
    survival: list[float]
    ci_low: list[float]
    ci_high: list[float]
    n_risk: list[int | str]
    at_risk: list[str] = field(default_factory=list)
    n0: str = ""


def _step_path(xs: list[float], ys: list[float]) -> str:
    d = [f"M{num(xs[0])},{num(ys[0])}"]
    for x, y in zip(xs[1:], ys[1:]):
        d.append(f"H{num(x)}V{num(y)}")
    return "".join(d)


def km_svg(arms: list[Arm], ticks: list[float], *, title: str, min_cell_count: int,
           xmin: float | None = None, xmax: float | None = None) -> str:
    """SVG text: cumulative incidence (1 - S) per arm, CI bands, numbers at risk at *ticks* (days)."""
    t_max = max([max(a.time) for a in arms if a.time] + [max(ticks) if ticks else 0.0, 1.0])
    lo, hi = zoom_range(xmin, xmax, (0.0, t_max))
    sx = Scale(lo, hi, X0, X1)
    ymax = 0.0
    for a in arms:
        for t, h in zip(a.time, a.ci_low):
            if lo <= t <= hi and h is not None and math.isfinite(h):
                ymax = max(ymax, 1 - h)
    ymax = min(1.0, max(0.02, ymax * 1.1))
    sy = Scale(0.0, nice_ticks(0, ymax, 5)[-1] if nice_ticks(0, ymax, 5)[-1] >= ymax else ymax, Y1, Y0)
    body = [f'<clipPath id="kmclip"><rect x="{X0}" y="{Y0 - 2}" width="{X1 - X0}" height="{Y1 - Y0 + 4}"/></clipPath>']
    body += y_axis(sy, X0, "cumulative incidence", fmt=lambda v: f"{100 * v:g}%", grid_to=X1)
    payload = {"min_cell": min_cell_count, "arms": []}
    for i, a in enumerate(arms):
        colour = PALETTE[i % len(PALETTE)]
        t = [0.0] + list(a.time)
        ci = [0.0] + [1 - s for s in a.survival]
        up = [0.0] + [1 - (v if v is not None and math.isfinite(v) else s) for v, s in zip(a.ci_low, a.survival)]
        dn = [0.0] + [1 - (v if v is not None and math.isfinite(v) else s) for v, s in zip(a.ci_high, a.survival)]
        xs = [sx(v) for v in t] + [sx(min(t_max, hi))]
        xs_band = xs
        if len(t) > 1:
            body.append('<g clip-path="url(#kmclip)">')
            top = [sy(v) for v in up] + [sy(up[-1])]
            bot = [sy(v) for v in dn] + [sy(dn[-1])]
            path_up = _step_path(xs_band, top)
            back = "".join(f"L{num(x)},{num(y)}" if j == 0 else f"H{num(x)}V{num(y)}" for j, (x, y) in
                           enumerate(zip(reversed(xs_band), reversed(bot))))
            body.append(f'<path d="{path_up}{back}Z" fill="{colour}" fill-opacity="0.14" stroke="none"/>')
            body.append(f'<path d="{_step_path(xs, [sy(v) for v in ci] + [sy(ci[-1])])}" fill="none" stroke="{colour}" '
                        f'stroke-width="2"/></g>')
        body.append(f'<rect x="{num(X0 + 10)}" y="{num(Y0 + 6 + 16 * i)}" width="12" height="3" fill="{colour}"/>'
                    f'<text x="{num(X0 + 27)}" y="{num(Y0 + 11 + 16 * i)}" font-size="12">{esc(a.name)}</text>')
        payload["arms"].append({"name": a.name, "t": [round(v, 2) for v in a.time],
                                "ci": [round(v, 5) for v in ci[1:]], "lo": [round(v, 5) for v in dn[1:]],
                                "hi": [round(v, 5) for v in up[1:]], "n": [str(v) for v in a.n_risk], "n0": a.n0})
    # x axis in years, ticks at the at-risk times when they fall in range
    shown = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
    years = shown if len(shown) >= 2 else [v * DAYS_PER_YEAR for v in nice_ticks(lo / DAYS_PER_YEAR, hi / DAYS_PER_YEAR, 6)]
    body.append(f'<line class="axis" x1="{X0}" x2="{X1}" y1="{Y1}" y2="{Y1}"/>')
    for t in years:
        if lo - 1e-9 <= t <= hi + 1e-9:
            body.append(f'<line class="axis" x1="{num(sx(t))}" x2="{num(sx(t))}" y1="{Y1}" y2="{Y1 + 4}"/>'
                        f'<text x="{num(sx(t))}" y="{Y1 + 16}" font-size="11" text-anchor="middle">{tick_text(t / DAYS_PER_YEAR)}</text>')
    body.append(f'<text x="{num((X0 + X1) / 2)}" y="{Y1 + 32}" font-size="12" text-anchor="middle">years since index</text>')
    body.append(f'<text x="4" y="{Y1 + 54}" font-size="11" font-weight="bold">Number at risk</text>')
    for i, a in enumerate(arms):  # each arm's name on its own line, its numbers under the ticks below it
        y = Y1 + 86 + 30 * i
        body.append(f'<text x="4" y="{num(y - 14)}" font-size="11" fill="{PALETTE[i % len(PALETTE)]}">{esc(a.name[:60])}</text>')
        for t, v in zip(ticks, a.at_risk):
            if lo - 1e-9 <= t <= hi + 1e-9:
                body.append(f'<text x="{num(sx(t))}" y="{num(y)}" font-size="11" text-anchor="middle">{esc(v)}</text>')
    body.append(f'<line class="guide" x1="{X0}" x2="{X0}" y1="{Y0}" y2="{Y1}" stroke="#444" stroke-dasharray="2,2" visibility="hidden"/>')
    extra = f"data-km='{esc(json.dumps(payload, separators=(',', ':')))}'"
    return svg(WIDTH, Y1 + 64 + 30 * len(arms), body, label=title, xscale=sx, extra=extra, focusable=True)


def km_figure(arms: list[Arm], ticks: list[float], *, title: str, caption: str, src: str | None, min_cell_count: int,
              xmin: float | None = None, xmax: float | None = None, fig_id: str | None = None) -> Markup:
    return figure(km_svg(arms, ticks, title=title, min_cell_count=min_cell_count, xmin=xmin, xmax=xmax), caption,
                  src=src, fig_id=fig_id)
