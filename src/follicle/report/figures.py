"""Embedding figures in a self-contained HTML page as ``data:`` URIs.

The study report's figures are SVG text (:mod:`follicle.report.svg`), drawn directly from the
published numbers: no plotting library, no worker processes. An SVG shown through ``<img>`` sees
no page styles, so :func:`svg_uri` adds the few the plots rely on. The network meta-analysis
report still draws with matplotlib (:func:`to_data_uri`).
"""

from __future__ import annotations

import base64
import io
from typing import Any

_SVG_STYLE = ("<style>.axis{stroke:#555}text{font-family:'DejaVu Sans',sans-serif;fill:#1d2430}"
              ".guide,.band{display:none}</style>")


def svg_uri(svg_text: str) -> str:
    """An SVG element as a ``data:`` URI, with the styles the plots need outside the web app."""
    head, sep, rest = svg_text.partition(">")
    text = f"{head}{sep}{_SVG_STYLE}{rest}" if sep else svg_text
    return f"data:image/svg+xml;base64,{base64.b64encode(text.encode()).decode()}"


def to_data_uri(fig: Any, fmt: str = "png", dpi: int = 110, *, tight: bool = True) -> str:
    """A matplotlib figure as a ``data:`` URI (PNG or SVG), closing it afterwards.

    ``tight`` crops to the drawn content (a second draw); figures with a fixed layout skip it.
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None,
                metadata={"Software": None} if fmt == "png" else None)
    plt.close(fig)
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"
