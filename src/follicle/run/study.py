"""Run a study spec on a CDM end to end and write results.json, Parquet tables and report.html."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from follicle.cdm.connect import connect
from follicle.cdm.fingerprint import fingerprint as cdm_fingerprint
from follicle.run.cache import ArtifactStore
from follicle.run.curves import curve_tables
from follicle.run.degenerate import NotEstimable
from follicle.run.pipeline import ComparisonRun, Progress, default_store, not_estimable_run, run_comparison
from follicle.run.report import study_report_html
from follicle.run.results import assemble, json_bytes, parquet_bytes, tables, write_outputs
from follicle.study.population import StudySession, build_population, outcome_columns
from follicle.study.spec import StudySpec


@dataclass
class StudyRun:
    """What a run produced: the results document, the per-comparison runs and the cache counters."""

    results: dict[str, Any]
    runs: list[ComparisonRun]
    store: ArtifactStore
    out_dir: Path


def run_study(
    spec: StudySpec,
    target: str | Path,
    out_dir: str | Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    truth: dict[tuple[str, str], float] | None = None,
) -> StudyRun:
    """Every comparison of *spec* on the CDM at *target*; outputs written to *out_dir* at the end.

    Nothing in *out_dir* changes unless the whole run succeeds (outputs are written to a
    temporary folder and renamed), so a failed run leaves the previous results intact.

    Parameters
    ----------
    spec : StudySpec
        The study.
    target : str or Path
        The CDM: a DuckDB file or a ``postgresql://`` URL.
    out_dir : str or Path
        Output folder: ``results.json``, ``tables/*.parquet``, ``report.html`` and the step cache.
    force : bool
        Recompute every step, ignoring cached artefacts.
    progress : callable, optional
        Called with a description of each step.
    truth : dict, optional
        True hazard ratios by (comparison, outcome), shown beside the estimates in the report
        (the synthetic world's; see :func:`follicle.run.demo.run_demo`).

    Returns
    -------
    StudyRun
        ``results`` (the aggregate, suppressed results document; :func:`follicle.run.results.tables`
        turns it into data frames; ``results["complete"]`` is false when some comparison or outcome
        could not be estimated, listed in ``results["not_estimated"]``), the per-comparison runs
        (unsuppressed, stay on the machine) and the cache counters.
    """
    out_dir = Path(out_dir)
    store = default_store(out_dir)
    con = connect(target, read_only=True)
    session: StudySession | None = None
    try:
        fp = cdm_fingerprint(con)
        runs = []
        for name in spec.comparisons:
            def open_session() -> StudySession:
                nonlocal session
                session = session or StudySession(spec, con)
                return session

            def extract(name: str = name) -> Any:
                return build_population(spec, con, name, session=open_session(), outcomes=[])

            def extract_outcomes(outcomes: list[str], name: str = name) -> Any:
                return outcome_columns(open_session(), name, outcomes)

            try:
                runs.append(run_comparison(spec, name, extract, extract_outcomes, store, fp, force=force,
                                           progress=progress))
            except NotEstimable as exc:  # an empty or degenerate comparison: keep its attrition and the reason
                runs.append(not_estimable_run(spec, exc))
        concept_sets = store.get_or_compute("concept_sets", store.key(fp, spec.concept_sets),
                                            lambda: open_session().concept_set_report(), force=force)
    finally:
        if session is not None:
            session.close()
        con.disconnect()
    results = assemble(spec, runs, fp, concept_sets=concept_sets)
    files = {"results.json": json_bytes(results),
             "report.html": study_report_html(spec, runs, results, truth=truth).encode()}
    files |= {f"tables/{name}.parquet": parquet_bytes(frame) for name, frame in tables(results).items()}
    files |= {f"tables/{name}.parquet": parquet_bytes(frame) for name, frame in curve_tables(runs, results, spec.min_cell_count).items()}
    write_outputs(out_dir, files)
    return StudyRun(results, runs, store, out_dir)
