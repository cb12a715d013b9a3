"""Every command answers an error under ``--json`` with one JSON object on stdout and a non-zero exit:
usage errors (caught before the command runs) and the command's own errors (a missing file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from follicle.cli import app

MISSING = "no-such-file.csv"

#: per command, arguments that make it fail on bad input (a missing file or database, a bad value)
BAD_INPUT: dict[str, list[str]] = {
    "synth": ["--config", MISSING],
    "cohorts": [MISSING, "--db", "no.duckdb"],
    "run": ["{spec}", "--db", "no-such.duckdb"],
    "demo": ["--persons", "10"],
    "meta": [MISSING],
    "salt": ["--top", "150", "--back", "0", "--left", "0", "--right", "0"],
    "cdm init": ["--cdm-version", "9.9"],
    "cdm load": [MISSING],
    "cdm check": ["--db", "no-such.duckdb"],
    "cdm summary": ["--db", "no-such.duckdb"],
    "cdm fingerprint": ["--db", "no-such.duckdb"],
    "analyze survival": [MISSING, "--time", "t", "--event", "e"],
    "analyze match": [MISSING, "--treatment", "t", "--covariates", "a"],
    "response single-arm": [MISSING],
    "response predictors": [MISSING, "--outcome", "y", "--predictors", "a"],
    "response safety": [MISSING],
    "response cdm": [MISSING, "--db", "no.duckdb"],
    "cds check": [MISSING, "--drug", "baricitinib"],
    "vocab load": [MISSING, "--db", "no.duckdb"],
    "nma": [MISSING],
    "atlas generate": [MISSING, "--db", "no.duckdb", "--out", "out"],
    "atlas export": [MISSING, "--cohort", "c", "--db", "no.duckdb", "--out", "c.json"],
    "network package": [MISSING, "--out", "p.zip"],
    "network run": ["no-such.zip", "--db", "no.duckdb", "--site", "a", "--out", "s.zip"],
    "network pool": ["no-such.zip", "--out", "pooled"],
}
NO_JSON = {"cds serve", "web"}  # servers, not reports: no --json output


def _commands() -> dict[str, list[str]]:
    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), [o for p in cmd.params for o in p.opts]

    return dict(walk(typer.main.get_command(app), []))


def test_every_command_is_covered():
    commands = _commands()
    assert {c for c, opts in commands.items() if "--json" not in opts} == NO_JSON
    assert set(commands) - NO_JSON == set(BAD_INPUT)


def _json_error(args: list[str]) -> dict:
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code != 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"error", "problems", "type", "exit_code"} and out["exit_code"] == res.exit_code
    assert out["error"]
    return out


@pytest.mark.parametrize("command", sorted(BAD_INPUT))
def test_bad_input_is_a_json_error(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nconcept_sets: {}\ncohorts: {}\ncomparisons: {}\n")
    args = [a.replace("{spec}", str(spec)) for a in BAD_INPUT[command]]
    out = _json_error([*command.split(), *args])
    assert "Traceback" not in out["error"]


@pytest.mark.parametrize("command", sorted(BAD_INPUT))
def test_usage_error_is_a_json_error(command):
    out = _json_error([*command.split(), "--no-such-option"])
    assert "no-such-option" in out["error"]


def test_without_json_errors_stay_on_stderr(tmp_path):
    res = CliRunner().invoke(app, ["cdm", "check", "--db", str(tmp_path / "no.duckdb")])
    assert res.exit_code == 2 and res.stdout == "" and "database file not found" in res.stderr


def test_spec_problems_listed_in_json(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: Bad Name\nconcept_sets: {}\ncohorts: {}\ncomparisons: {}\n")
    out = _json_error(["cohorts", str(spec), "--db", str(Path(tmp_path) / "x.duckdb")])
    assert out["type"] == "SpecError" and any(p.startswith("name:") for p in out["problems"])
