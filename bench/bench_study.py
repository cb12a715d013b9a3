"""Benchmark the whole bundled study (studies/jaki_neuropsych.yaml) against a plain pandas + lifelines pipeline.

The synthetic world is built once into a cache folder outside the repo (default /tmp/follicle-bench;
building 1M persons takes minutes). Then, in the same run, two child processes (so each peak RSS is that
pipeline's own, DuckDB's native memory included):

* **follicle**: :func:`follicle.run.study.run_study` on a fresh output folder (no cache), with the time
  split by step (setup = connect + CDM fingerprint; per comparison: cohorts + analysis table,
  propensity model + matching, outcome extraction, outcome estimation; results + report writing).
* **plain**: the same study written plainly: the CDM tables read from the DuckDB file into pandas,
  cohorts built with pandas merges/groupbys following the same spec rules, statsmodels logistic PS,
  greedy 1:1 caliper matching (random order, 0.1 SD of the logit), lifelines CoxPHFitter with
  cluster-robust SEs, lifelines KM + log-rank + PH test, a normal empirical null on the negative
  controls, results as JSON + Parquet (no HTML report). Concept sets are resolved with Follicle's
  vocabulary resolver (codes -> concept ids / source patterns) in both pipelines.

Both pipelines' matched counts and hazard ratios are compared at the end (a sanity check that the
plain pipeline computes the same study). Then, what a user types: ``python -m follicle run`` on the
same CDM into a fresh output folder (cold: no work folder), ``--cli-repeat`` times in fresh processes
(the timing wrappers of the first child are not in it), against the plain child's whole process.
Usage::

    PYTHONPATH=src python bench/bench_study.py [--persons 1000000] [--cache /tmp/follicle-bench] [--cli-repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads, DuckDB's included)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def world_paths(cache: Path, persons: int, seed: int) -> tuple[Path, Path]:
    return cache / f"world-{persons}-{seed}.duckdb", cache / f"truth-{persons}-{seed}.json"


def ensure_world(cache: Path, persons: int, seed: int) -> tuple[Path, Path, float | None]:
    """Build the world once (returns the build seconds, or None when it was cached)."""
    db, truth = world_paths(cache, persons, seed)
    if db.exists() and truth.exists():
        return db, truth, None
    from follicle.synth.build import build_world

    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build_world(persons, seed, db, truth_path=truth, overwrite=True)
    return db, truth, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# follicle child


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds now; CPU = user + system of every thread of this process."""
    return time.perf_counter(), time.process_time()


def run_follicle(db: str, study: str) -> dict:
    """The whole study through :func:`run_study`, each step timed directly (wall and CPU, in this process)."""
    from follicle.run import pipeline
    from follicle.run import study as study_mod
    from follicle.study.spec import load_spec

    spent: dict[str, list[float]] = {}
    current = ["setup"]  # the comparison being run (from the progress messages)

    def timed(label, fn, per_comparison=True):
        def wrapper(*a, **k):
            w0, c0 = clock()
            try:
                return fn(*a, **k)
            finally:
                w1, c1 = clock()
                acc = spent.setdefault(f"{current[0]}: {label}" if per_comparison else label, [0.0, 0.0])
                acc[0] += w1 - w0
                acc[1] += c1 - c0
        return wrapper

    study_mod.connect = timed("setup: connect", study_mod.connect, False)
    study_mod.table_hashes = timed("setup: CDM fingerprint (hashes of the tables read)", study_mod.table_hashes, False)
    study_mod.StudySession = timed("session: resolve concept sets, scan event tables", study_mod.StudySession, False)
    study_mod.build_population = timed("cohorts + analysis table", study_mod.build_population)
    pipeline.propensity_step = timed("propensity model", pipeline.propensity_step)
    pipeline.adjust = timed("matching + balance", pipeline.adjust)
    study_mod.outcome_columns = timed("outcome extraction (15 outcomes)", study_mod.outcome_columns)
    pipeline.estimate_outcome = timed("outcome estimation (KM, log-rank, Cox, PH, risks)", pipeline.estimate_outcome)
    study_mod.study_report_html = timed("report.html (figures + page)", study_mod.study_report_html, False)

    def progress(msg: str) -> None:
        current[0] = msg.split(": ", 1)[0]

    spec = load_spec(study)
    with tempfile.TemporaryDirectory() as out:
        start = clock()
        done = study_mod.run_study(spec, db, out, progress=progress)
        stop = clock()
    total = [stop[0] - start[0], stop[1] - start[1]]
    steps = dict(spent)
    steps["rest (calibration, results.json, Parquet, cache writes)"] = [
        total[i] - sum(v[i] for v in spent.values()) for i in (0, 1)]
    estimates = {
        f"{c['id']}/{o['outcome']}": {k: o.get(k) for k in ("n_target", "n_comparator", "hr", "hr_ci_low", "hr_ci_high")}
        for c in done.results["comparisons"] for o in c["outcomes"]
    }
    cohorts = {c["id"]: [c["n_target_before"], c["n_comparator_before"]] for c in done.results["comparisons"]}
    return {"total_s": total[0], "steps": steps, "peak_rss_gib": peak_rss_gib(), "estimates": estimates,
            "cohorts_before_matching": cohorts}


# ----------------------------------------------------------------------------------------------
# child entry point


def child(which: str, db: str, study: str) -> None:
    if which == "follicle":
        out = run_follicle(db, study)
    else:
        from plain_study import run_plain

        out = run_plain(db, study)
        out["peak_rss_gib"] = peak_rss_gib()
    out["cpu_s"] = cpu_s()
    print("RESULT " + json.dumps(out, default=float))


def child_env(src: Path) -> dict[str, str]:
    """The environment of a child process that imports follicle from *src*."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}


def spawn(which: str, db: Path, src: Path) -> dict:
    env = child_env(src)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", which, "--db", str(db)], capture_output=True, check=False,
                          text=True, env=env)
    process_s = time.perf_counter() - t0  # end to end: interpreter start, imports, the study, exit
    if proc.returncode != 0:
        raise SystemExit(f"{which} child failed:\n{proc.stderr[-4000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT ")) | {"process_s": process_s}


def spawn_cli(db: Path, src: Path) -> dict:
    """``python -m follicle run`` (fresh process, cold output and work folders): wall and CPU seconds
    from start to exit, that process's peak RSS (``wait4``), exit code."""
    env = child_env(src)
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "stderr", "w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "follicle", "run", str(STUDY), "--db", str(db),
                                 "--out", str(Path(tmp) / "out")], stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # reaped by wait4: tell Popen, so it does not wait or warn again
        if code not in (0, 3):
            err.seek(0)
            raise SystemExit(f"follicle run failed ({code}):\n{err.read()[-4000:]}")
    return {"process_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gib": usage.ru_maxrss / 2**20,
            "exit": code}


def compare(a: dict, b: dict) -> dict:
    """How far the two pipelines' matched counts and HRs are apart."""
    import math

    n_diff, hr_diff, both = 0, 0.0, 0
    for key, x in a["estimates"].items():
        y = b["estimates"].get(key)
        if not y:
            continue
        if x["n_target"] != y["n_target"] or x["n_comparator"] != y["n_comparator"]:
            n_diff += 1
        if isinstance(x.get("hr"), (int, float)) and isinstance(y.get("hr"), (int, float)):
            hr_diff = max(hr_diff, abs(math.log(x["hr"]) - math.log(y["hr"])))
            both += 1
    return {"cohorts_before_matching": {"follicle": a["cohorts_before_matching"], "plain": b["cohorts_before_matching"]},
            "pairs": len(a["estimates"]), "pairs_with_n_differing": n_diff, "pairs_with_both_hr": both,
            "max_abs_log_hr_diff": hr_diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("FOLLICLE_BENCH_CACHE", "/tmp/follicle-bench")))
    ap.add_argument("--db", type=Path, help="use this CDM instead of a synthetic world")
    ap.add_argument("--src", type=Path, default=REPO / "src",
                    help="the follicle source tree to time (default: this checkout's src/)")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--cli-repeat", type=int, default=3, help="fresh `follicle run` processes to time (0: none)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=["follicle", "plain"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, str(args.db), str(STUDY))
        return
    build_s = None
    if args.db is None:
        args.db, _, build_s = ensure_world(args.cache, args.persons, args.seed)
    load0 = os.getloadavg()
    fol = spawn("follicle", args.db, args.src)
    plain = None if args.skip_plain else spawn("plain", args.db, args.src)
    cli = [spawn_cli(args.db, args.src) for _ in range(args.cli_repeat)]
    load1 = os.getloadavg()
    report = {"persons": args.persons, "db": str(args.db), "src": str(args.src), "world_build_s": build_s,
              "loadavg_before": load0, "loadavg_after": load1, "follicle": fol, "plain": plain, "follicle_run_cli": cli}
    if cli:
        median = sorted(r["process_s"] for r in cli)[len(cli) // 2]
        report["follicle_run_cli_median_s"] = median
        if plain:
            report["ratio_cli"] = plain["process_s"] / median
    if plain:
        report["ratio_time"] = plain["total_s"] / fol["total_s"]
        report["ratio_cpu"] = plain["cpu_s"] / fol["cpu_s"]
        report["ratio_process"] = plain["process_s"] / fol["process_s"]
        report["agreement"] = compare(fol, plain)
    if args.json:
        print(json.dumps(report, indent=2, default=float))
        return
    print(f"study {STUDY.name} on {args.db} ({args.persons:,} persons); load average "
          f"{load0[0]:.1f} before, {load1[0]:.1f} after (2-core machine)")
    print(f"\n{'follicle step':<66}{'wall s':>9}{'CPU s':>9}")
    for k, (w, c) in fol["steps"].items():
        print(f"{k:<66}{w:>9.2f}{c:>9.2f}")
    if plain:
        print(f"\n{'plain pandas + lifelines step':<66}{'wall s':>9}{'CPU s':>9}")
        for k, (w, c) in plain["steps"].items():
            print(f"{k:<66}{w:>9.2f}{c:>9.2f}")
    print(f"\n{'pipeline':<28}{'wall s':>9}{'CPU s':>9}{'peak RSS GiB':>14}{'wall ratio':>12}{'CPU ratio':>11}")
    print(f"{'follicle':<28}{fol['total_s']:>9.1f}{fol['cpu_s']:>9.1f}{fol['peak_rss_gib']:>14.2f}{1.0:>12.2f}{1.0:>11.2f}")
    if plain:
        print(f"{'plain pandas + lifelines':<28}{plain['total_s']:>9.1f}{plain['cpu_s']:>9.1f}{plain['peak_rss_gib']:>14.2f}"
              f"{report['ratio_time']:>12.2f}{report['ratio_cpu']:>11.2f}")
        print(f"\nwhole child processes (start, imports, study with the step timers, exit): follicle {fol['process_s']:.1f} s, "
              f"plain {plain['process_s']:.1f} s, ratio {report['ratio_process']:.2f}")
    if cli:
        runs = ", ".join(f"{r['process_s']:.2f} s ({r['cpu_s']:.2f} s CPU, {r['peak_rss_gib']:.2f} GiB, exit {r['exit']})"
                         for r in cli)
        print(f"\n`python -m follicle run` (fresh process, cold output folder): {runs}; median "
              f"{report['follicle_run_cli_median_s']:.2f} s" + (
                  f"; plain process {plain['process_s']:.1f} s, ratio {report['ratio_cli']:.2f}" if plain else ""))
    if plain:
        print(f"\nagreement: {report['agreement']}")
    print(f"targets: wall <= 60 s: {fol['total_s'] <= 60}; peak <= 4 GiB: {fol['peak_rss_gib'] <= 4}; "
          f">= 10x faster: {None if not plain else report['ratio_time'] >= 10}")


if __name__ == "__main__":
    main()
