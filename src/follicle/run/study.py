"""Run a study spec on a CDM end to end and write results.json, Parquet tables and report.html."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from follicle.cdm.connect import connect
from follicle.cdm.fingerprint import combine, table_hashes
from follicle.privacy import check_min_cell_count
from follicle.run.cache import ArtifactStore
from follicle.run.curves import curve_tables, run_curves
from follicle.run.degenerate import NotEstimable
from follicle.run.pipeline import ComparisonRun, Progress, default_store, not_estimable_run, run_comparison
from follicle.run.publish import check_out_dir, publish, remove_stale, work_dir_for
from follicle.run.report import study_report_html
from follicle.run.results import assemble, json_bytes, parquet_bytes, tables
from follicle.study.events import DOMAINS
from follicle.study.population import StudySession, build_population, outcome_columns
from follicle.study.spec import StudySpec

#: The tables every study reads, whatever its concept sets: people, their observation, death and
#: the vocabulary that resolves the concept sets.
BASE_TABLES = ("cdm_source", "concept", "concept_ancestor", "concept_relationship", "death", "observation_period",
               "person", "source_to_concept_map")
#: Every CDM table a study of concept sets can read.
STUDY_TABLES = tuple(sorted({*BASE_TABLES, *(d.table for d in DOMAINS.values())}))


def tables_read(spec: StudySpec, session: StudySession) -> list[str]:
    """The event tables *spec* reads on this CDM: those of the domains its concept sets resolved to
    (and the default covariate set's domains); every table Circe can read when a cohort is ATLAS."""
    if any(c.atlas for c in spec.cohorts.values()):
        from follicle.study.atlas.domains import DOMAINS as ATLAS_DOMAINS  # what Circe's criteria read: visits, eras...

        return sorted({*STUDY_TABLES, *(d.table for d in ATLAS_DOMAINS.values())} - set(BASE_TABLES))
    domains = {rs.domain for rs in session.resolved.values() if rs.domain in DOMAINS}
    if spec.covariates.default_set is not None:
        domains |= set(spec.covariates.default_set.domains)
    return sorted(DOMAINS[d].table for d in domains)


def cdm_fingerprint(con: Any, spec: StudySpec, store: ArtifactStore, open_session: Callable[[], StudySession],
                    *, force: bool = False) -> str:
    """Content fingerprint of the tables *spec* reads (hashed in the database, see cdm.fingerprint).

    A table the study does not read (often measurement, the largest) is not hashed, so changing it
    keeps every cached step. Which event tables are read follows from concept-set resolution,
    itself a function of the vocabulary and the spec: it is cached under their hashes, so a warm
    run hashes the base tables, then only the event tables read.
    """
    base = table_hashes(con, BASE_TABLES, portable=False)
    events = store.get_or_compute("tables_read", store.key(combine(base), spec.concept_sets, spec.cohorts,
                                                           spec.covariates),
                                  lambda: tables_read(spec, open_session()), force=force)
    return combine(base | table_hashes(con, events, portable=False))


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
    work_dir: str | Path | None = None,
    force: bool = False,
    allow_small_cells: bool = False,
    progress: Progress | None = None,
    truth: dict[tuple[str, str], float] | None = None,
) -> StudyRun:
    """Every comparison of *spec* on the CDM at *target*; outputs published to *out_dir* at the end.

    *out_dir* receives only aggregate outputs and is replaced as a whole when the run succeeds
    (:func:`follicle.run.publish.publish`), so a failed or killed run leaves the previous results
    intact. The step cache lives in *work_dir* (default ``<out_dir>.work``).

    Parameters
    ----------
    spec : StudySpec
        The study.
    target : str or Path
        The CDM: a DuckDB file or a ``postgresql://`` URL.
    out_dir : str or Path
        Shareable output folder: ``results.json``, ``tables/*.parquet``, ``report.html``.
    work_dir : str or Path, optional
        Work folder of the step cache (row-level); default ``<out_dir>.work``.
    allow_small_cells : bool
        Accept a ``min_cell_count`` below 5 (a warning goes into results and report).
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
    warning = check_min_cell_count(spec.min_cell_count, allow_small_cells=allow_small_cells,
                                   where=f"study {spec.name!r}: min_cell_count")
    check_out_dir(out_dir)
    work = Path(work_dir) if work_dir is not None else work_dir_for(out_dir)
    if work.resolve() == out_dir.resolve() or work.resolve().is_relative_to(out_dir.resolve()):
        from follicle.errors import InputError
        raise InputError(f"--work {work}: must not be inside the output folder {out_dir} (it holds row-level data)")
    store = default_store(work)
    store.root.mkdir(parents=True, exist_ok=True)
    remove_stale(store.root, depth=2)
    con = connect(target, read_only=True)
    session: StudySession | None = None

    def open_session() -> StudySession:
        nonlocal session
        session = session or StudySession(spec, con)
        return session

    try:
        fp = cdm_fingerprint(con, spec, store, open_session, force=force)
        runs = []
        for name in spec.comparisons:
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
    results = assemble(spec, runs, fp, concept_sets=concept_sets, privacy_warning=warning)
    curves = run_curves(runs, results, spec.min_cell_count)  # once, for the tables and the report
    files = {"results.json": json_bytes(results),
             "report.html": study_report_html(spec, runs, results, truth=truth, curves=curves).encode()}
    files |= {f"tables/{name}.parquet": parquet_bytes(frame) for name, frame in tables(results).items()}
    files |= {f"tables/{name}.parquet": parquet_bytes(frame) for name, frame in curve_tables(curves, spec.min_cell_count).items()}
    publish(out_dir, files)
    return StudyRun(results, runs, store, out_dir)
