"""``follicle --help`` and ``follicle <cmd> --help`` load no heavy library (issue #21, point 1).

The check is on what gets imported, not on a timing (timings live in bench/): a command module that
imports pandas, numpy, ibis, numba, scipy or matplotlib at its top makes every ``--help`` pay for it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "scipy", "ibis", "duckdb", "numba", "matplotlib", "pyarrow", "jinja2", "sklearn")

# every command group and a leaf command under each group that has them
HELP_ARGS = [
    [], ["cdm"], ["cdm", "load"], ["synth"], ["cohorts"], ["run"], ["demo"], ["analyze"], ["analyze", "match"], ["analyze", "survival"],
    ["meta"], ["response"], ["response", "predictors"], ["salt"], ["cds"], ["nma"], ["web"], ["vocab"], ["atlas"],
]

_PROBE = """
import json, sys
from follicle.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = %r
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


@pytest.mark.parametrize("args", HELP_ARGS, ids=lambda a: " ".join(a) or "root")
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE % (HEAVY,), *args, "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout, proc.stdout  # the help was printed, not an error
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"`follicle {' '.join(args)} --help` imported {loaded}"


def test_probe_detects_a_heavy_import() -> None:
    """The probe itself can fail: running a command that computes does load the libraries."""
    proc = subprocess.run([sys.executable, "-c", _PROBE % (HEAVY,), "analyze", "match", "/nonexistent.csv",
                           "--treatment", "t", "--covariates", "x"], capture_output=True, text=True, timeout=60)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "pandas" in loaded


def test_study_run_imports_no_plotting_or_unused_library(tmp_path) -> None:
    """The study report's figures are SVG written directly (issue #21, point 3): running a small
    study and rendering its report imports no plotting library, nor scipy.stats, scikit-learn or
    numba (the pipeline uses none of them; together ~1 s of imports)."""
    probe = f"""
import sys
from follicle.run.study import run_study
from follicle.study.spec import load_spec
from follicle.synth.build import build_world
build_world(3000, 5, {str(tmp_path / 'w.duckdb')!r}, overwrite=True)
run_study(load_spec('studies/jaki_neuropsych.yaml'), {str(tmp_path / 'w.duckdb')!r}, {str(tmp_path / 'out')!r})
print(sorted(m for m in ('matplotlib', 'scipy.stats', 'sklearn', 'numba', 'statsmodels') if m in sys.modules))
"""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600, cwd=repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/svg+xml;base64,") >= 3  # forest, preference, love at least
    assert proc.stdout.strip().splitlines()[-1] == "[]"  # nor scipy.stats/sklearn/numba: a leaner `follicle run`


def test_command_map_matches_what_each_module_registers() -> None:
    """``follicle <command>`` loads only the module that COMMANDS names for it: the map must list
    exactly the top-level commands each module registers, or a command would go missing."""
    from follicle.cli import COMMANDS, build_app

    for module, names in COMMANDS.items():
        app = build_app((module,))
        got = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
        assert sorted(got) == sorted(names), module
    every = build_app()
    assert len(every.registered_commands) + len(every.registered_groups) == sum(map(len, COMMANDS.values()))


def test_a_command_runs_with_only_its_module_loaded() -> None:
    """The console entry point builds the app with the asked command's module only."""
    probe = ("import sys; sys.argv = ['follicle', 'meta', '--help']\n"
             "from follicle.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('follicle.cli.') and not m.endswith('_common')))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "['follicle.cli.meta']"


LOADING = """
import gc, json
from follicle.cli import _common
_common.OWN_PROCESS = {own}
before = gc.get_freeze_count()
with _common.loading_libraries():
    inside = gc.isenabled()
    import fractions  # a library loaded inside the block
print(json.dumps({{"inside": inside, "after": gc.isenabled(), "frozen": gc.get_freeze_count() - before}}))
"""


@pytest.mark.parametrize("own", [True, False])
def test_libraries_load_with_the_collector_off_only_in_the_follicle_process(own: bool) -> None:
    """In ``follicle``'s own process a command's imports run without cyclic collections and are then
    frozen out of later ones; in any other process (tests, a notebook) the block changes nothing."""
    out = subprocess.run([sys.executable, "-c", LOADING.format(own=own)], capture_output=True, text=True, check=True)
    state = json.loads(out.stdout)
    assert state["after"] is True
    assert state["inside"] is (not own)
    assert (state["frozen"] > 0) is own
