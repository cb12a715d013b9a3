"""docs/web.md names only options that ``follicle web`` has, and shows pictures that exist."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from follicle.cli import app

DOC = Path(__file__).parents[2] / "docs" / "web.md"


def test_documented_options_exist() -> None:
    text = DOC.read_text()
    helptext = CliRunner().invoke(app, ["web", "--help"], env={"COLUMNS": "200"}).output
    options = set(re.findall(r"\| `(--[a-z-]+)` \|", text))
    assert {"--db", "--port", "--host", "--runs", "--token", "--min-cell-count"} <= options
    for opt in options:
        assert opt in helptext, opt
    for line in re.findall(r"^\$ (.*)$", text, flags=re.M):
        for opt in re.findall(r"(--[a-z-]+)", line):
            assert opt in helptext, line


def test_pictures_exist_and_are_small() -> None:
    root = DOC.parent
    readme = (root.parent / "README.md").read_text()
    pictures = re.findall(r"\]\((img/[^)]+\.png)\)", DOC.read_text())
    pictures += [p.removeprefix("docs/") for p in re.findall(r"\]\((docs/img/web-[^)]+\.png)\)", readme)]
    assert pictures
    for p in pictures:
        path = root / p
        assert path.is_file(), p
        assert path.stat().st_size < 120_000, p
