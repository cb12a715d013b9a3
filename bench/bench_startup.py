"""Benchmark: how fast ``follicle --help`` and ``follicle <cmd> --help`` answer (issue #21, point 1).

Each command is run ``--repeat`` times as a fresh process; the median wall time is printed with
the median of two peers from the same run: a bare interpreter (``python -c pass``) and one that
only imports the CLI framework (Typer and Rich), the floor of any Typer CLI. tests/test_cli_startup.py
checks what the help imports (no numpy, pandas, ibis, ...); this script says what it costs.

Run: ``python bench/bench_startup.py [--repeat 7]`` (``follicle`` from the same virtualenv).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [["--help"], ["run", "--help"], ["analyze", "match", "--help"], ["analyze", "survival", "--help"],
            ["meta", "--help"], ["cdm", "load", "--help"], ["web", "--help"]]


def median_wall(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Median wall and median CPU (user + system) seconds of *repeat* fresh processes; on a shared
    machine CPU time is the steadier figure (wall time waits for a core)."""
    walls, cpus = [], []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("follicle"))
    bare = median_wall([sys.executable, "-c", "pass"], args.repeat)
    typer = median_wall([sys.executable, "-c", "import typer, rich.console"], args.repeat)
    print(f"load average {os.getloadavg()[0]:.1f} (shared 2-core machine); median of {args.repeat} fresh processes")
    print(f"{'command':<34}{'wall s':>8}{'CPU s':>8}")
    print(f"{'python -c pass':<34}{bare[0]:8.3f}{bare[1]:8.3f}")
    label = 'python -c "import typer, rich"'
    print(f"{label:<34}{typer[0]:8.3f}{typer[1]:8.3f}")
    for cmd in COMMANDS:
        wall, cpu = median_wall([exe, *cmd], args.repeat)
        print(f"{'follicle ' + ' '.join(cmd):<34}{wall:8.3f}{cpu:8.3f}  (CPU {cpu - typer[1]:+.3f} s over Typer + Rich; "
              f"target < 0.3 s: wall {wall < 0.3}, CPU {cpu < 0.3})")


if __name__ == "__main__":
    main()
