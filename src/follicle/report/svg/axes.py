"""Scales, ticks and the figure wrapper of the SVG plots (the study report and the web app).

Plots are SVG made from aggregate numbers. In the web app, interaction lives in ``web/static/plots.js``:
elements with ``data-tip`` show a tooltip on hover or keyboard focus, and an SVG carrying
``data-x0/x1`` (the x domain) and ``data-px0/px1`` (its position in viewBox units) can be zoomed:
the browser asks the figure's ``data-src`` again with ``xmin``/``xmax``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

TARGET = "#1b6ca8"
COMPARATOR = "#c0392b"
PALETTE = (TARGET, COMPARATOR, "#2e7d32", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")


def esc(text: Any) -> str:
    """Text safe inside SVG/HTML element content and attribute values."""
    return str(escape(str(text)))


def num(x: float) -> str:
    """A coordinate with two decimals (keeps the SVG small)."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


@dataclass(frozen=True)
class Scale:
    """A linear or log map from data values (d0..d1) to drawing positions (r0..r1)."""

    d0: float
    d1: float
    r0: float
    r1: float
    log: bool = False

    def __call__(self, x: float) -> float:
        if self.log:
            x = max(x, 1e-300)
            f = (math.log(x) - math.log(self.d0)) / (math.log(self.d1) - math.log(self.d0))
        else:
            f = (x - self.d0) / (self.d1 - self.d0) if self.d1 != self.d0 else 0.5
        return self.r0 + f * (self.r1 - self.r0)

    def clip(self, x: float) -> float:
        lo, hi = min(self.r0, self.r1), max(self.r0, self.r1)
        return min(max(self(x), lo), hi)

    def ticks(self, n: int = 6) -> list[float]:
        return log_ticks(self.d0, self.d1) if self.log else nice_ticks(self.d0, self.d1, n)


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About *n* round tick values covering lo..hi (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, x = [], first
    while x <= hi + 1e-9 * step:
        out.append(round(x, 12))
        x += step
    return out


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a ratio axis: 1, 2, 5 times powers of ten (fewer when the range is wide)."""
    lo, hi = max(lo, 1e-12), max(hi, 1e-12)
    out = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo * 0.999 <= v <= hi * 1.001:
                out.append(v)
    if len(out) > 9:
        out = [v for v in out if str(v).lstrip("0.").startswith("1")]
    return out or [lo, hi]


def tick_text(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:g}"
    return f"{v:.3f}".rstrip("0").rstrip(".")


def zoom_range(xmin: float | None, xmax: float | None, full: tuple[float, float], *, log: bool = False) -> tuple[float, float]:
    """The x range to draw: the requested one when valid and inside a generous frame, else *full*."""
    if xmin is None or xmax is None or not (math.isfinite(xmin) and math.isfinite(xmax)) or xmax <= xmin:
        return full
    if log and xmin <= 0:
        return full
    span = full[1] - full[0] if not log else math.log(full[1] / full[0])
    width = xmax - xmin if not log else math.log(xmax / xmin)
    if width < span * 1e-4:
        return full
    return (xmin, xmax)


def x_axis(scale: Scale, y: float, label: str, fmt: Any = tick_text) -> list[str]:
    """Axis line, ticks and labels along *y*."""
    parts = [f'<line class="axis" x1="{num(scale.r0)}" x2="{num(scale.r1)}" y1="{num(y)}" y2="{num(y)}"/>']
    for t in scale.ticks():
        x = scale(t)
        parts.append(f'<line class="axis" x1="{num(x)}" x2="{num(x)}" y1="{num(y)}" y2="{num(y + 4)}"/>'
                     f'<text x="{num(x)}" y="{num(y + 16)}" font-size="11" text-anchor="middle">{esc(fmt(t))}</text>')
    mid = (scale.r0 + scale.r1) / 2
    parts.append(f'<text x="{num(mid)}" y="{num(y + 32)}" font-size="12" text-anchor="middle">{esc(label)}</text>')
    return parts


def y_axis(scale: Scale, x: float, label: str, fmt: Any = tick_text, *, grid_to: float | None = None) -> list[str]:
    parts = [f'<line class="axis" x1="{num(x)}" x2="{num(x)}" y1="{num(scale.r0)}" y2="{num(scale.r1)}"/>']
    for t in scale.ticks(5):
        y = scale(t)
        parts.append(f'<line class="axis" x1="{num(x - 4)}" x2="{num(x)}" y1="{num(y)}" y2="{num(y)}"/>'
                     f'<text x="{num(x - 7)}" y="{num(y + 4)}" font-size="11" text-anchor="end">{esc(fmt(t))}</text>')
        if grid_to is not None:
            parts.append(f'<line x1="{num(x)}" x2="{num(grid_to)}" y1="{num(y)}" y2="{num(y)}" stroke="#e6e9ee"/>')
    mid = (scale.r0 + scale.r1) / 2
    parts.append(f'<text transform="translate({num(x - 44)},{num(mid)}) rotate(-90)" font-size="12" '
                 f'text-anchor="middle">{esc(label)}</text>')
    return parts


def svg(width: float, height: float, body: Sequence[str], *, label: str, xscale: Scale | None = None,
        extra: str = "", focusable: bool = False) -> str:
    """An ``<svg>`` element; with *xscale*, the attributes the zoom code reads."""
    attrs = [f'viewBox="0 0 {num(width)} {num(height)}"', 'xmlns="http://www.w3.org/2000/svg"', 'role="img"',
             f'aria-label="{esc(label)}"']
    if xscale is not None:
        attrs += [f'data-x0="{xscale.d0:.8g}"', f'data-x1="{xscale.d1:.8g}"', f'data-px0="{num(xscale.r0)}"',
                  f'data-px1="{num(xscale.r1)}"', f'data-scale="{"log" if xscale.log else "linear"}"']
    if focusable:
        attrs.append('tabindex="0"')
    band = ""
    if xscale is not None:
        band = '<rect class="band" x="0" y="0" width="0" height="100%" fill="#f2b705" fill-opacity="0.2" visibility="hidden"/>'
    return f'<svg {" ".join(attrs)} {extra}><title>{esc(label)}</title>{"".join(body)}{band}</svg>'


def figure(svg_text: str, caption: str, *, src: str | None = None, zoom: bool = True, fig_id: str | None = None) -> Markup:
    """A ``<figure class="plot">`` around an SVG, with zoom buttons when it can be re-requested."""
    tools = ""
    if src is not None and zoom:
        tools = ('<div class="plot-tools no-print" role="group" aria-label="Zoom">'
                 '<button type="button" class="secondary" data-zoom="in" aria-label="Zoom in">+</button>'
                 '<button type="button" class="secondary" data-zoom="out" aria-label="Zoom out">&minus;</button>'
                 '<button type="button" class="secondary" data-zoom="reset" aria-label="Reset zoom">reset</button></div>')
    attrs = f' data-src="{esc(src)}"' if src is not None else ""
    if fig_id:
        attrs += f' id="{esc(fig_id)}"'
    return Markup(f'<figure class="plot"{attrs}>{tools}{svg_text}<figcaption>{esc(caption)}</figcaption></figure>')


def url(path: str, **params: Any) -> str:
    """*path* with query parameters (values URL-quoted; None left out)."""
    q = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items() if v is not None)
    return f"{path}?{q}" if q else path
