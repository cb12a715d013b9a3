"""docs/spec-reference.md is generated from the pydantic models: it must be current, and every field
of every model reachable from StudySpec must say what it means."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from follicle.study.reference import main, models, reference_markdown, undocumented
from follicle.study.spec import StudySpec

DOC = Path(__file__).parents[2] / "docs" / "spec-reference.md"
REGENERATE = ".venv/bin/python -m follicle.study.reference --write docs/spec-reference.md"


def test_reference_is_current():
    assert DOC.read_text() == reference_markdown(), f"docs/spec-reference.md is stale: run {REGENERATE}"


def test_every_field_has_a_meaning():
    assert undocumented() == [], "add Field(description=...) or a FIELD_DOCS entry for these fields"


def test_every_model_and_field_is_in_the_reference():
    text = reference_markdown()
    found = {m for m, _ in models()}
    assert StudySpec in found and len(found) >= 15
    for model in found:
        assert f"## {model.__name__}\n" in text
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name}"


def test_regenerate_command(tmp_path):
    out = tmp_path / "ref.md"
    assert main(["--write", str(out)]) == 0 and out.read_text() == reference_markdown()
    res = subprocess.run([sys.executable, "-m", "follicle.study.reference"], capture_output=True, text=True, check=True)
    assert res.stdout == reference_markdown()
