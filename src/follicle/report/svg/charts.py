"""Funnel plot, preference-score distribution, love plot and network graph as SVG (hover for values)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from follicle.report.svg.axes import COMPARATOR, PALETTE, TARGET, Scale, esc, nice_ticks, num, svg, x_axis, y_axis


def funnel_svg(yi: Sequence[float], sei: Sequence[float], labels: Sequence[str], *, estimate: float, xlabel: str,
               ratio: bool, filled_yi: Sequence[float] = (), title: str = "Funnel plot") -> str:
    """Effect (analysis scale) against its standard error, with the 95% pseudo-confidence funnel;
    studies filled in by trim-and-fill drawn hollow."""
    w, h, x0, x1, y0, y1 = 640.0, 380.0, 70.0, 620.0, 20.0, 320.0
    se_max = max(list(sei) + [1e-6]) * 1.1
    spread = max([abs(v - estimate) for v in list(yi) + list(filled_yi)] + [1.96 * se_max]) * 1.1
    sx = Scale(estimate - spread, estimate + spread, x0, x1)
    sy = Scale(0.0, se_max, y0, y1)
    fmt = (lambda v: f"{math.exp(v):.2g}") if ratio else (lambda v: f"{v:.2g}")
    body = x_axis(sx, y1, xlabel + (" (log scale)" if ratio else ""), fmt=fmt) + y_axis(sy, x0, "standard error")
    body.append(f'<path d="M{num(sx(estimate - 1.96 * se_max))},{num(sy(se_max))} L{num(sx(estimate))},{num(sy(0))} '
                f'L{num(sx(estimate + 1.96 * se_max))},{num(sy(se_max))}" fill="#eef1f5" stroke="#9aa4b1"/>')
    body.append(f'<line x1="{num(sx(estimate))}" x2="{num(sx(estimate))}" y1="{y0}" y2="{y1}" stroke="#14324d"/>')
    tr = math.exp if ratio else (lambda v: v)
    for v, s, lab in zip(yi, sei, labels):
        tip = f"{lab}\n{'ratio' if ratio else 'estimate'} {tr(v):.3f}, SE {s:.3f}"
        body.append(f'<circle class="pt" tabindex="0" data-tip="{esc(tip)}" cx="{num(sx(v))}" cy="{num(sy(s))}" r="5" '
                    f'fill="{TARGET}"/>')
    for v in filled_yi:
        s = sei[0] if len(sei) else 0.0
        body.append(f'<circle cx="{num(sx(v))}" cy="{num(sy(s))}" r="5" fill="none" stroke="{TARGET}"/>')
    return svg(w, h, body, label=title)


def histogram_svg(bins: Sequence[dict[str, Any]], arms: Sequence[str], *, title: str, xlabel: str = "preference score",
                  band: tuple[float, float] | None = (0.3, 0.7), note: str = "") -> str:
    """Per-arm histograms (``bins``: arm, bin_low, bin_high, count as shown, density or None)."""
    w, h, x0, x1, y0, y1 = 640.0, 300.0, 70.0, 620.0, 20.0, 250.0
    dens = [b["density"] for b in bins if b.get("density") is not None]
    ymax = max(dens + [1e-6]) * 1.08
    sx, sy = Scale(0.0, 1.0, x0, x1), Scale(0.0, _top(ymax) if dens else 1.0, y1, y0)
    body = []
    if band:
        body.append(f'<rect x="{num(sx(band[0]))}" y="{y0}" width="{num(sx(band[1]) - sx(band[0]))}" height="{y1 - y0}" '
                    'fill="#9aa4b1" fill-opacity="0.15"/>')
    body += x_axis(sx, y1, xlabel) + y_axis(sy, x0, "density")
    for i, arm in enumerate(arms):
        colour = (TARGET, COMPARATOR)[i % 2]
        for b in (b for b in bins if b["arm"] == arm):
            d = b.get("density")
            tip = f"{arm}: {b['bin_low']:.2f} to {b['bin_high']:.2f}\npeople: {b['count']}"
            if d is None:
                continue
            body.append(f'<rect class="pt" tabindex="0" data-tip="{esc(tip)}" x="{num(sx(b["bin_low"]))}" y="{num(sy(d))}" '
                        f'width="{num(sx(b["bin_high"]) - sx(b["bin_low"]))}" height="{num(max(0.0, y1 - sy(d)))}" '
                        f'fill="{colour}" fill-opacity="0.45" stroke="{colour}" stroke-width="0.5"/>')
        body.append(f'<rect x="{num(x0 + 10)}" y="{num(y0 + 6 + 16 * i)}" width="12" height="10" fill="{colour}" '
                    f'fill-opacity="0.45"/><text x="{num(x0 + 27)}" y="{num(y0 + 15 + 16 * i)}" font-size="12">{esc(arm)}</text>')
    if note:
        body.append(f'<text x="{x0}" y="{h - 6}" font-size="11" fill="#5b6472">{esc(note)}</text>')
    return svg(w, h, body, label=title)


def _top(vmax: float) -> float:
    """The first round tick at or above *vmax* (the top of a value axis, so no bar is cut)."""
    ticks = nice_ticks(0.0, vmax, 5)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else vmax
    return ticks[-1] if ticks[-1] >= vmax else ticks[-1] + step


def love_svg(rows: Sequence[dict[str, Any]], *, threshold: float, title: str = "Covariate balance",
             before: str = "before", after: str = "after", max_rows: int = 40) -> str:
    """Absolute SMD per covariate before and after adjustment (largest 40 before), threshold line."""
    data = [r for r in rows if r.get("smd_before") is not None or r.get("smd_after") is not None]
    data.sort(key=lambda r: -abs(r.get("smd_before") or 0.0))
    data = data[:max_rows]
    w, x0, x1, top, row = 700.0, 260.0, 680.0, 20.0, 16.0
    h = top + row * len(data) + 50
    vmax = max([abs(v) for r in data for v in (r.get("smd_before"), r.get("smd_after")) if v is not None] + [threshold * 1.5])
    sx = Scale(0.0, vmax * 1.05, x0, x1)
    body = [f'<line x1="{num(sx(threshold))}" x2="{num(sx(threshold))}" y1="{top}" y2="{num(top + row * len(data))}" '
            'stroke="#444" stroke-dasharray="3,3"/>']
    for i, r in enumerate(data):
        y = top + row * i + row / 2
        name = str(r.get("covariate", ""))
        body.append(f'<text x="{num(x0 - 8)}" y="{num(y + 4)}" font-size="11" text-anchor="end">{esc(name[:40])}</text>')
        b, a = r.get("smd_before"), r.get("smd_after")
        tip = f"{name}\nSMD {before}: {b if b is None else f'{b:.3f}'}\nSMD {after}: {a if a is None else f'{a:.3f}'}"
        if b is not None:
            body.append(f'<circle class="pt" tabindex="0" data-tip="{esc(tip)}" cx="{num(sx(abs(b)))}" cy="{num(y)}" r="4" '
                        'fill="none" stroke="#7f8c8d" stroke-width="1.5"/>')
        if a is not None:
            body.append(f'<circle class="pt" tabindex="0" data-tip="{esc(tip)}" cx="{num(sx(abs(a)))}" cy="{num(y)}" r="4" '
                        f'fill="{TARGET}"/>')
    body += x_axis(sx, top + row * len(data) + 2, "absolute standardised mean difference")
    gap = 14 + 7 * len(before) + 16  # the second legend entry after the first one's text (~7 px a letter)
    body.append(f'<circle cx="{x0 + 6}" cy="{h - 8}" r="4" fill="none" stroke="#7f8c8d"/><text x="{x0 + 14}" y="{h - 4}" '
                f'font-size="11">{esc(before)}</text><circle cx="{x0 + 6 + gap}" cy="{h - 8}" r="4" fill="{TARGET}"/>'
                f'<text x="{x0 + 14 + gap}" y="{h - 4}" font-size="11">{esc(after)}</text>')
    return svg(w, h, body, label=title)


def netgraph_svg(treatments: Sequence[str], edges: Sequence[dict[str, Any]], *, title: str = "Network",
                 scores: dict[str, float] | None = None) -> str:
    """Treatments on a circle, an edge per direct comparison (width by number of studies)."""
    w, h, cx, cy, rad = 640.0, 460.0, 320.0, 225.0, 165.0
    n = max(len(treatments), 1)
    pos = {t: (cx + rad * math.cos(2 * math.pi * i / n - math.pi / 2), cy + rad * math.sin(2 * math.pi * i / n - math.pi / 2))
           for i, t in enumerate(treatments)}
    kmax = max([e["k"] for e in edges] + [1])
    body = []
    for e in edges:
        (xa, ya), (xb, yb) = pos[e["treat1"]], pos[e["treat2"]]
        width = 1.5 + 6 * e["k"] / kmax
        tip = f"{e['treat1']} vs {e['treat2']}: {e['k']} stud{'y' if e['k'] == 1 else 'ies'}"
        body.append(f'<line class="pt" tabindex="0" data-tip="{esc(tip)}" x1="{num(xa)}" y1="{num(ya)}" x2="{num(xb)}" '
                    f'y2="{num(yb)}" stroke="#7f98b3" stroke-width="{num(width)}" stroke-linecap="round"/>')
    for i, t in enumerate(treatments):
        x, y = pos[t]
        k = sum(e["k"] for e in edges if t in (e["treat1"], e["treat2"]))
        tip = f"{t}\n{k} direct comparison stud{'y' if k == 1 else 'ies'}" + (
            f"\nP-score {scores[t]:.3f}" if scores and t in scores else "")
        anchor = "start" if x > cx + 5 else ("end" if x < cx - 5 else "middle")
        dx = 12 if anchor == "start" else (-12 if anchor == "end" else 0)
        dy = -14 if y < cy - rad * 0.9 else (22 if y > cy + rad * 0.9 else 4)
        body.append(f'<circle class="pt" tabindex="0" data-tip="{esc(tip)}" cx="{num(x)}" cy="{num(y)}" r="9" '
                    f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                    f'<text x="{num(x + dx)}" y="{num(y + dy)}" font-size="12" text-anchor="{anchor}">{esc(t)}</text>')
    return svg(w, h, body, label=title)
