"""The small Markdown subset of CDS Hooks card details, as safe HTML.

Text is HTML-escaped first; then ``**bold**``, ``*italic*`` / ``_italic_``, ```code```, links
``[label](http...)`` (http and https only), ``- `` list items and blank-line paragraphs.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^\s)]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITAL = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])|(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?![\w_])")
_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    s = str(escape(text))
    s = _CODE.sub(r"<code>\1</code>", s)
    s = _LINK.sub(lambda m: f'<a href="{m.group(2)}" rel="noopener noreferrer">{m.group(1)}</a>', s)
    s = _BOLD.sub(r"<strong>\1</strong>", s)
    return _ITAL.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", s)


def to_html(markdown: str) -> Markup:
    """HTML of *markdown* (see the module docstring for the subset)."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", markdown.strip()):
        lines = block.split("\n")
        items = [ln for ln in lines if ln.startswith("- ")]
        head = [ln for ln in lines if not ln.startswith("- ")]
        if head:
            out.append("<p>" + "<br>".join(_inline(ln) for ln in head) + "</p>")
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(ln[2:])}</li>" for ln in items) + "</ul>")
    return Markup("".join(out))
