"""The study report: figures from the run (aggregate, small numbers hidden) and the HTML page.

Kaplan-Meier figures are drawn from rounded counts (:func:`follicle.privacy.protect_km`), so
neither a step nor the numbers at risk under the plot give back a small count. They are drawn in
worker processes that end with the parent: each asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), and an interrupted parent terminates them before it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pandas as pd

from follicle.report.figures import km_plot, love_plot, preference_plot, to_data_uri
from follicle.report.forest import ForestRow, forest_plot
from follicle.privacy import km_at_risk, protect_km
from follicle.report.study_report import render_study_report
from follicle.run.narrative import caveats, methods_paragraph
from follicle.run.pipeline import ComparisonRun
from follicle.study.spec import StudySpec


def hr_forest(results: dict[str, Any]) -> Any:
    """Forest plot of HRs: one block per comparison, one row per outcome (negative controls last)."""
    rows: list[ForestRow] = []
    for comp in results["comparisons"]:
        rows.append(ForestRow(label=comp["title"], kind="header"))
        for o in sorted(comp["outcomes"], key=lambda o: o["negative_control"]):
            label = o["outcome"] + (" (NC)" if o["negative_control"] else "")
            if o.get("hr") is None:
                rows.append(ForestRow(label=label, kind="note", note=o.get("label") or "not estimated"))
            else:
                rows.append(ForestRow(label=label, estimate=o["hr"], ci_low=o["hr_ci_low"], ci_high=o["hr_ci_high"]))
    return forest_plot(rows, log_scale=True, xlabel="hazard ratio (95% CI)", label_header="Outcome",
                       estimate_header="HR [95% CI]", favours=("favours target", "favours comparator"),
                       show_weights=False)


def protected_curves(curves: dict[str, pd.DataFrame], ticks: list[float], min_cell: int,
                     ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Curves rebuilt from rounded counts, and numbers at risk at *ticks* read from them (text)."""
    out, rows = {}, {}
    for label, curve in curves.items():
        table = curve.rename(columns={"at_risk": "n_risk"})
        safe = protect_km(table, min_cell)
        out[label] = safe[["time", "survival", "ci_low", "ci_high", "n_risk"]].rename(columns={"n_risk": "at_risk"})
        n0 = int(table["n_risk"].iloc[0]) if len(table) else 0
        rows[label] = [str(v) for v in km_at_risk(safe, ticks, n0, min_cell)]
    return out, pd.DataFrame.from_dict(rows, orient="index", columns=ticks)


def _die_with_parent(parent: int) -> None:
    """Worker initialiser: SIGKILL when the parent dies (Linux), and default SIGINT/SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _km_uri(job: tuple[dict[str, pd.DataFrame], pd.DataFrame, str, int]) -> str:
    curves, at_risk, title, min_cell = job
    return to_data_uri(km_plot(curves, at_risk, title=title, min_cell_count=min_cell), tight=False)


def _render_all(jobs: list[tuple[Any, ...]]) -> list[str]:
    """KM figures, in worker processes when there are several cores (matplotlib is single-threaded
    and a figure costs ~0.15 s, so a study's thirty curves are worth spreading); order is kept."""
    workers = min(os.cpu_count() or 1, 4)
    if workers < 2 or len(jobs) < 4 or "fork" not in mp.get_all_start_methods():
        return [_km_uri(job) for job in jobs]
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_die_with_parent,
                               initargs=(os.getpid(),))

    def kill_workers() -> None:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            if proc.pid is not None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # The handlers kill the workers first and only then let the signal do what it did before: an
    # exception raised by a handler can be swallowed (e.g. if it lands in an at-fork callback), a
    # dead worker cannot. Were the parent killed outright, PR_SET_PDEATHSIG ends the workers.
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)
                if signal.getsignal(sig) is not signal.SIG_IGN}  # an ignored signal stays ignored

    def on_signal(signum: int, frame: Any) -> None:
        kill_workers()
        signal.signal(signum, previous[signum])
        if signum == signal.SIGINT and callable(previous[signum]):
            previous[signum](signum, frame)  # the default: KeyboardInterrupt
        else:
            os.kill(os.getpid(), signum)

    in_main = _in_main_thread()
    if in_main:
        for sig in previous:
            signal.signal(sig, on_signal)
    try:
        out = list(pool.map(_km_uri, jobs, chunksize=max(1, len(jobs) // (2 * workers))))
        pool.shutdown(wait=True)
        return out
    finally:
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # after an error or interrupt: end the workers now, not after their jobs
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=5)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def figures(runs: list[ComparisonRun], results: dict[str, Any], min_cell: int) -> dict[str, Any]:
    """Data URIs of every figure, keyed as :func:`render_study_report` expects."""
    out: dict[str, Any] = {"forest": to_data_uri(hr_forest(results))}
    jobs, keys = [], []
    for run in runs:
        shown = {o["outcome"] for comp in results["comparisons"] if comp["id"] == run.name
                 for o in comp["outcomes"] if o.get("hr") is not None}
        for o in run.outcomes:
            if o.at_risk is None or not o.curves or o.outcome not in shown:
                continue  # withheld estimates get no curve: its steps would reveal the small counts
            curves, at_risk = protected_curves(o.curves, [float(c) for c in o.at_risk.columns], min_cell)
            jobs.append((curves, at_risk, o.outcome.replace("_", " "), min_cell))
            keys.append((run.name, o.outcome))
        ps = run.propensity
        if ps is None:  # not estimable: no propensity figures
            out[run.name] = {"km": {}}
            continue
        published = next((c["balance"] for c in results["comparisons"] if c["id"] == run.name), None)
        balance = ps.balance if published is None else pd.DataFrame(published).dropna(subset=["smd_before", "smd_after"])
        out[run.name] = {
            "love": to_data_uri(love_plot(balance)),  # only the SMDs results.json shows (docs/privacy.md)
            "preference": to_data_uri(preference_plot(ps.preference, run.treatment, (run.target, run.comparator))),
            "km": {},
        }
    for (name, outcome), uri in zip(keys, _render_all(jobs)):
        out[name]["km"][outcome] = uri
    return out


def study_report_html(spec: StudySpec, runs: list[ComparisonRun], results: dict[str, Any], *,
                      truth: dict[tuple[str, str], float] | None = None) -> str:
    """The report page; *truth* (true HR by comparison and outcome, the synthetic world's) is shown
    beside each estimate."""
    return render_study_report(results, figures(runs, results, spec.min_cell_count),
                               methods=methods_paragraph(spec), caveats=caveats(spec, results), truth=truth)


__all__ = ["hr_forest", "study_report_html"]
