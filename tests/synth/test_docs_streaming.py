"""The streaming commands of docs/synthetic-world.md ("Streaming, chunks and blocks") and docs/scale.md
("Synthetic world at scale") run as shown (at 3,000 persons instead of 10 million), and the Parquet folder
loaded by `cdm load` holds the same CDM as the direct DuckDB write."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from follicle.cli import app

DOCS = Path(__file__).parents[2] / "docs"


def commands(doc: str, section: str) -> list[list[str]]:
    text = (DOCS / doc).read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [shlex.split(line.replace("--persons 10000000", "--persons 3000"), comments=True)
            for line in block.splitlines() if line]


@pytest.mark.parametrize("doc, section, loaded, direct", [
    ("synthetic-world.md", "Streaming, chunks and blocks", "world.duckdb", "world-direct.duckdb"),
    ("scale.md", "Synthetic world at scale", "loaded.duckdb", "world.duckdb"),
])
def test_streaming_commands_run_and_agree(tmp_path, monkeypatch, doc, section, loaded, direct):
    monkeypatch.chdir(tmp_path)
    cmds = commands(doc, section)
    assert sorted(c[:2] for c in cmds) == [["follicle", "cdm"], ["follicle", "synth"], ["follicle", "synth"]]
    for cmd in cmds:
        res = CliRunner().invoke(app, cmd[1:])
        assert res.exit_code == 0, (cmd, res.output)
    assert Path("truth.json").exists() and Path("world-pq/person.parquet").is_dir()
    with duckdb.connect(loaded, read_only=True) as a, duckdb.connect(direct, read_only=True) as b:
        for table in ("person", "condition_occurrence", "drug_exposure", "measurement", "visit_occurrence"):
            q = f"select * from {table} order by all"
            assert a.execute(q).fetchall() == b.execute(q).fetchall(), table
