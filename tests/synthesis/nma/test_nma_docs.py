"""docs/nma.md: every ```python block runs, and every ``$ follicle`` command in ```console blocks exits 0."""

import re
import shlex
import shutil
from pathlib import Path

from typer.testing import CliRunner

from follicle.cli import app

DOC = Path(__file__).resolve().parents[3] / "docs" / "nma.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_python_blocks_run():
    code = blocks("python")
    assert code
    for block in code:
        exec(compile(block, str(DOC), "exec"), {})


def test_console_commands_run(tmp_path, shared_dir, monkeypatch):
    monkeypatch.setenv("FOLLICLE_SHARED", str(shared_dir))
    shutil.copytree(DOC.parents[1] / "studies", tmp_path / "studies")
    (tmp_path / "arms.csv").write_text(
        "study,treatment,events,n\nA,placebo,5,100\nA,drug 1,20,100\nB,placebo,6,90\nB,drug 2,25,95\n"
        "C,drug 1,22,110\nC,drug 2,30,105\n")
    monkeypatch.chdir(tmp_path)
    commands = [line[2:] for b in blocks("console") for line in b.splitlines() if line.startswith("$ follicle ")]
    assert len(commands) == 2
    for cmd in commands:
        res = CliRunner().invoke(app, shlex.split(cmd)[1:])
        assert res.exit_code == 0, f"{cmd}\n{res.output}"
    assert (tmp_path / "nma.html").exists() and (tmp_path / "network.png").exists()
