"""The commands shown in docs/atlas.md run as written (on GiBleed, outputs in a temporary folder)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from follicle.cli import app

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "atlas.md"


def _commands() -> list[list[str]]:
    block = re.search(r"```bash\n(.*?)```", DOC.read_text(), re.S).group(1)  # type: ignore[union-attr]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("follicle atlas")]


def test_documented_commands_run(gibleed_full_db, tmp_path):
    commands = _commands()
    assert [c[:2] for c in commands] == [["atlas", "generate"], ["atlas", "export"]]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        for cmd in commands:
            args = [str(gibleed_full_db) if a == "gibleed.duckdb" else a for a in cmd]
            args = [str(tmp_path / a) if a in ("cohorts/", "celecoxib.json") else a for a in args]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
    finally:
        os.chdir(cwd)
    assert len(pd.read_csv(tmp_path / "cohorts" / "celecoxibCensored.csv")) == 1750  # as Circe's SQL (oracle test)
    assert (tmp_path / "celecoxib.json").exists()
