"""docs/network.md runs: its python block prints what the text block after it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "network.md"


def test_network_doc_code_runs_and_prints_what_it_says():
    blocks = re.findall(r"```(python|text)\n(.*?)```", DOC.read_text(), re.S)
    assert [k for k, _ in blocks] == ["python", "text"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(blocks[0][1], str(DOC), "exec"), {})
    assert buf.getvalue() == blocks[1][1]
