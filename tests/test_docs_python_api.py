"""docs/python-api.md runs: every ``python`` block in order, in one namespace, from the repository
root; what a block prints must equal the ``text`` block that follows it."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[1] / "docs" / "python-api.md"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str | None]]:
    """(code, expected output or None) pairs, in order."""
    found = BLOCK.findall(DOC.read_text())
    out: list[tuple[str, str | None]] = []
    for kind, body in found:
        if kind == "python":
            out.append((body, None))
        else:
            assert out and out[-1][1] is None, "a text block must follow a python block"
            out[-1] = (out[-1][0], body)
    return out


def test_the_walkthrough_runs_and_prints_what_it_says(shared_dir, monkeypatch):
    repo = DOC.parents[1]
    monkeypatch.chdir(repo)
    blocks = _blocks()
    assert len(blocks) >= 8
    ns: dict = {}
    for i, (code, expected) in enumerate(blocks):
        code = code.replace('Path("../shared/', f'Path("{shared_dir}/') if os.environ.get("FOLLICLE_SHARED") else code
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{DOC.name} block {i + 1}", "exec"), ns)  # noqa: S102 - the documentation's own code
        if expected is not None:
            got = [line.rstrip() for line in buf.getvalue().strip().splitlines()]
            assert got == [line.rstrip() for line in expected.strip().splitlines()], f"block {i + 1}"
    assert ns["est"]["hr"].iloc[0] == pytest.approx(1.42, abs=0.01)
    assert (ns["work"] / "results" / "report.html").exists()
