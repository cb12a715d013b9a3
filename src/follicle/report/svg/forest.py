"""Forest plots as SVG: one row per estimate (square sized by weight, CI line), summary diamonds,
headers and notes; hover or focus a row for its numbers; zoom on the x axis."""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup

from follicle.report.svg.axes import Scale, esc, figure, num, svg, x_axis, zoom_range

ROW = 22
LABEL_W = 270
PLOT_X0, PLOT_X1 = 290.0, 640.0
TEXT_X = 655.0
WIDTH = 860.0


@dataclass
class Row:
    """One line of a forest plot. ``kind``: ``study``, ``summary``, ``header`` or ``note``.

    Values are on the natural scale (ratios, not logs); ``weight`` in percent.
    """

    label: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    weight: float | None = None
    kind: str = "study"
    note: str = ""
    extra: str = ""


def _finite(*xs: float | None) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def forest_svg(rows: list[Row], *, log: bool, xlabel: str, favours: tuple[str, str] | None = None,
               xmin: float | None = None, xmax: float | None = None, title: str = "Forest plot",
               show_weights: bool = True, digits: int = 2) -> str:
    """The SVG text of a forest plot of *rows* (see :class:`Row`)."""
    vals = [v for r in rows if r.kind in ("study", "summary") for v in (r.ci_low, r.ci_high, r.estimate) if _finite(v)]
    if log:
        vals = [v for v in vals if v > 0]
    null = 1.0 if log else 0.0
    if vals:
        lo, hi = min(vals + [null]), max(vals + [null])
    else:
        lo, hi = (0.5, 2.0) if log else (-1.0, 1.0)
    if log:
        lo, hi = lo / 1.15, hi * 1.15
    else:
        pad = (hi - lo) * 0.08 or 1.0
        lo, hi = lo - pad, hi + pad
    lo, hi = zoom_range(xmin, xmax, (lo, hi), log=log)
    top = 30.0
    height = top + ROW * len(rows) + 60
    sx = Scale(lo, hi, PLOT_X0, PLOT_X1, log=log)
    body = [f'<text x="4" y="18" font-size="12" font-weight="bold">{esc("Study / outcome")}</text>',
            f'<text x="{TEXT_X}" y="18" font-size="12" font-weight="bold">{esc("Estimate [95% CI]")}</text>']
    if show_weights:
        body.append(f'<text x="{WIDTH - 6}" y="18" font-size="12" font-weight="bold" text-anchor="end">Weight</text>')
    if lo < null < hi:
        body.append(f'<line x1="{num(sx(null))}" x2="{num(sx(null))}" y1="{top - 4}" y2="{num(top + ROW * len(rows))}" '
                    'stroke="#444" stroke-dasharray="3,3"/>')
    wmax = max([r.weight for r in rows if r.weight] or [1.0])
    for i, r in enumerate(rows):
        y = top + ROW * i + ROW / 2
        weight = "bold" if r.kind in ("header", "summary") else "normal"
        body.append(f'<text x="4" y="{num(y + 4)}" font-size="12" font-weight="{weight}">{esc(r.label[:48])}</text>')
        if r.kind == "header":
            continue
        if not _finite(r.estimate, r.ci_low, r.ci_high) or (log and min(r.estimate, r.ci_low, r.ci_high) <= 0):  # type: ignore[type-var]
            body.append(f'<text x="{TEXT_X}" y="{num(y + 4)}" font-size="12" fill="#5b6472">{esc(r.note or "not estimated")}</text>')
            continue
        est, cl, ch = float(r.estimate), float(r.ci_low), float(r.ci_high)  # type: ignore[arg-type]
        text = f"{est:.{digits}f} [{cl:.{digits}f}, {ch:.{digits}f}]"
        tip = f"{r.label}\n{text}" + (f"\nweight {r.weight:.1f}%" if r.weight is not None else "") + (f"\n{r.extra}" if r.extra else "")
        x0, x1, xe = sx.clip(cl), sx.clip(ch), sx(est)
        if r.kind == "summary":
            h = 7
            shape = (f'<polygon class="pt" tabindex="0" data-tip="{esc(tip)}" points="{num(x0)},{num(y)} {num(xe)},{num(y - h)} '
                     f'{num(x1)},{num(y)} {num(xe)},{num(y + h)}" fill="#14324d"/>')
            body.append(shape if sx.r0 <= xe <= sx.r1 else "")
        else:
            body.append(f'<line x1="{num(x0)}" x2="{num(x1)}" y1="{num(y)}" y2="{num(y)}" stroke="#1d2430" stroke-width="1.4"/>')
            if cl < sx.d0:
                body.append(f'<path d="M{num(x0 + 6)},{num(y - 4)} L{num(x0)},{num(y)} L{num(x0 + 6)},{num(y + 4)}" fill="none" stroke="#1d2430"/>')
            if ch > sx.d1:
                body.append(f'<path d="M{num(x1 - 6)},{num(y - 4)} L{num(x1)},{num(y)} L{num(x1 - 6)},{num(y + 4)}" fill="none" stroke="#1d2430"/>')
            size = 4 + 7 * math.sqrt((r.weight or wmax * 0.4) / wmax)
            if sx.r0 <= xe <= sx.r1:
                body.append(f'<rect class="pt" tabindex="0" data-tip="{esc(tip)}" x="{num(xe - size / 2)}" y="{num(y - size / 2)}" '
                            f'width="{num(size)}" height="{num(size)}" fill="#1b6ca8"/>')
        body.append(f'<text x="{TEXT_X}" y="{num(y + 4)}" font-size="12">{esc(text)}</text>')
        if show_weights and r.weight is not None:
            body.append(f'<text x="{WIDTH - 6}" y="{num(y + 4)}" font-size="12" text-anchor="end">{r.weight:.1f}%</text>')
    base = top + ROW * len(rows) + 4
    body += x_axis(sx, base, xlabel)
    if favours:
        body.append(f'<text x="{num(PLOT_X0)}" y="{num(base + 48)}" font-size="11" fill="#5b6472">&#8592; {esc(favours[0])}</text>'
                    f'<text x="{num(PLOT_X1)}" y="{num(base + 48)}" font-size="11" fill="#5b6472" text-anchor="end">{esc(favours[1])} &#8594;</text>')
    return svg(WIDTH, height + 8, body, label=title, xscale=sx)


def forest_figure(rows: list[Row], *, caption: str, src: str | None, fig_id: str | None = None, **kw: object) -> Markup:
    return figure(forest_svg(rows, **kw), caption, src=src, fig_id=fig_id)  # type: ignore[arg-type]
