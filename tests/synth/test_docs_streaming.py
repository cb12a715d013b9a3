"""docs/synthetic-world.md, "Streaming, chunks and blocks": its commands run as shown (at 3,000 persons
instead of 10 million), and the Parquet folder loaded by `cdm load` holds the same CDM as the direct write."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from follicle.cli import app

DOC = Path(__file__).parents[2] / "docs" / "synthetic-world.md"


def commands() -> list[list[str]]:
    section = DOC.read_text().split("## Streaming, chunks and blocks", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line.replace("--persons 10000000", "--persons 3000")) for line in block.splitlines() if line]


def test_streaming_commands_run_and_agree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmds = commands()
    assert [c[:2] for c in cmds] == [["follicle", "synth"], ["follicle", "cdm"], ["follicle", "synth"]]
    for cmd in cmds:
        res = CliRunner().invoke(app, cmd[1:])
        assert res.exit_code == 0, (cmd, res.output)
    assert Path("truth.json").exists() and Path("world-pq/person.parquet").is_dir()
    with duckdb.connect("world.duckdb", read_only=True) as a, duckdb.connect("world-direct.duckdb", read_only=True) as b:
        for table in ("person", "condition_occurrence", "drug_exposure", "measurement", "visit_occurrence"):
            q = f"select * from {table} order by all"
            assert a.execute(q).fetchall() == b.execute(q).fetchall(), table
