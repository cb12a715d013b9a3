"""The study report: figures from the run (aggregate, small numbers hidden) and the HTML page.

Every figure is drawn from what may be published, per adjustment: Kaplan-Meier figures from
rounded counts (:func:`follicle.privacy.protect_km`), so neither a step nor the numbers at risk
under the plot give back a small count; love plots from the SMDs results.json shows; preference
distributions from counts per bin rounded up to multiples of the minimum cell count
(:mod:`follicle.run.curves`). Kaplan-Meier figures are drawn in
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
from follicle.report.study_report import render_study_report
from follicle.run.curves import adjusted_preference, preference_bins, protected_curves, published_curves
from follicle.run.narrative import caveats, methods_paragraph
from follicle.run.pipeline import ComparisonRun
from follicle.study.spec import StudySpec


def hr_forest(results: dict[str, Any]) -> Any:
    """Forest plot of HRs: one block per comparison, one row per outcome (negative controls last),
    and under each outcome one row per adjustment when the study has several."""
    rows: list[ForestRow] = []
    for comp in results["comparisons"]:
        rows.append(ForestRow(label=comp["title"], kind="header"))
        for o in sorted(comp["outcomes"], key=lambda o: o["negative_control"]):
            label = o["outcome"] + (" (NC)" if o["negative_control"] else "")
            estimates = o.get("estimates") or [dict(o, name="")]
            several = len(estimates) > 1
            if several:
                rows.append(ForestRow(label=label, kind="note", note=""))
            for e in estimates:
                text = f"  {e['name']}" if several else label
                if e.get("hr") is None:
                    rows.append(ForestRow(label=text, kind="note", note=e.get("label") or "not estimated"))
                else:
                    rows.append(ForestRow(label=text, estimate=e["hr"], ci_low=e["hr_ci_low"], ci_high=e["hr_ci_high"]))
    return forest_plot(rows, log_scale=True, xlabel="hazard ratio (95% CI)", label_header="Outcome",
                       estimate_header="HR [95% CI]", favours=("favours target", "favours comparator"),
                       show_weights=False)


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
    """Data URIs of every figure, keyed as :func:`render_study_report` expects: ``forest``, and per
    comparison id ``preference`` (before adjustment) and per adjustment name ``love``,
    ``preference`` (after adjustment) and ``km`` (outcome -> URI; unweighted designs only, negative
    controls under the primary adjustment only)."""
    out: dict[str, Any] = {"forest": to_data_uri(hr_forest(results))}
    jobs, keys = [], []
    for run in runs:
        comp = next(c for c in results["comparisons"] if c["id"] == run.name)
        labels = (run.target, run.comparator)
        entry: dict[str, Any] = {"adjustments": {}}
        out[run.name] = entry
        if not run.adjusted:  # not estimable: no figures
            continue
        if run.propensity is not None:
            entry["preference"] = to_data_uri(preference_plot(preference_bins(
                run.propensity.preference, run.treatment, labels, min_cell), labels))
        for name, adj in run.adjusted.items():
            figs: dict[str, Any] = {"km": {}}
            published = next((a["balance"] for a in comp.get("adjustments", []) if a["name"] == name), [])
            balance = pd.DataFrame(published, columns=["covariate", "smd_before", "smd_after"]).dropna(
                subset=["smd_before", "smd_after"])
            if len(balance):  # only the SMDs results.json shows (docs/privacy.md)
                figs["love"] = to_data_uri(love_plot(balance, after_label=f"after {adj.kind}"
                                                     if adj.kind != "crude" else "crude (no adjustment)"))
            bins = adjusted_preference(run, name, min_cell)
            if bins is not None:
                figs["preference"] = to_data_uri(preference_plot(bins, labels))
            entry["adjustments"][name] = figs
    for comparison, name, outcome, curves, at_risk in published_curves(runs, results, min_cell):
        jobs.append((curves, at_risk, outcome.replace("_", " "), min_cell))
        keys.append((comparison, name, outcome))
    for (run_name, adj_name, outcome), uri in zip(keys, _render_all(jobs)):
        out[run_name]["adjustments"][adj_name]["km"][outcome] = uri
    return out


def study_report_html(spec: StudySpec, runs: list[ComparisonRun], results: dict[str, Any], *,
                      truth: dict[tuple[str, str], float] | None = None) -> str:
    """The report page; *truth* (true HR by comparison and outcome, the synthetic world's) is shown
    beside each estimate."""
    return render_study_report(results, figures(runs, results, spec.min_cell_count),
                               methods=methods_paragraph(spec), caveats=caveats(spec, results), truth=truth)


__all__ = ["hr_forest", "protected_curves", "study_report_html"]
