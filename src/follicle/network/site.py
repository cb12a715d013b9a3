"""One site's run of a study package: the aggregates it may send, and nothing else.

``follicle network run PKG.zip --db DB --site NAME --out SITE.zip`` runs the package's spec with
the study pipeline (:func:`follicle.run.study.run_study`, its outputs and step cache in a temporary
folder removed afterwards unless ``--work`` keeps the cache) and writes a bundle of:

- ``aggregates.json``: per comparison its attrition (suppressed as results.json), propensity AUC
  and equipoise, per adjustment its sizes, max |SMD| and diagnostics; per comparison x outcome x
  adjustment the counts (small ones as ``"<k"``), the estimate (log HR, SE, HR and CI), the
  profile log-likelihood of the log HR (:mod:`follicle.survival.profile`), diagnostics (balance,
  equipoise, EASE, MDRR) and Kaplan-Meier survival at fixed days rebuilt from rounded counts
  (:func:`follicle.privacy.protect_km`). An estimate results.json withholds (small counts) has no
  profile and no curve either: a likelihood curve gives back the counts behind it.
- ``summary.html``: the same for the site's data steward to read before sending.
- ``manifest.json``: SHA-256 of each member, the package id, the site.

No person id, no date of an individual, no row-level table: :func:`check_aggregate` refuses a
document holding a key that names one before anything is written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from follicle import __version__
from follicle.errors import InputError
from follicle.network.archive import json_bytes, write_zip
from follicle.network.package import read_package
from follicle.privacy import km_at_risk, protect_km
from follicle.run.pipeline import ComparisonRun, Progress
from follicle.run.study import run_study

FORMAT = "follicle-network-bundle/1"
AGGREGATES = "aggregates.json"
SUMMARY = "summary.html"
#: Days after the start of the time at risk at which Kaplan-Meier survival is shared.
KM_DAYS = (180, 365, 730, 1095)
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ESTIMATE_KEYS = ("name", "adjustment", "estimand", "status", "label", "n_target", "n_comparator", "events_target",
                 "events_comparator", "person_years_target", "person_years_comparator", "log_hr", "se_log_hr",
                 "hr", "hr_ci_low", "hr_ci_high", "p", "calibrated_hr", "calibrated_ci_low", "calibrated_ci_high",
                 "calibrated_p", "mdrr", "diagnostics", "diagnostics_overall", "withheld", "warnings")
_ROW_KEYS = ("person_id", "birth", "date", "visit_occurrence_id")


def check_site_name(site: str) -> str:
    if not SITE_NAME.match(site or ""):
        raise InputError(f"--site {site!r}: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return site


def check_aggregate(obj: Any, where: str = "aggregates") -> None:
    """Refuse anything that looks row-level: a key naming a person id, a birth or a date (the study's
    own dates, such as its period, are in the package, not here)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if any(bad in str(k).lower() for bad in _ROW_KEYS):
                raise InputError(f"{where}.{k}: a site bundle holds no person ids or dates (refused)")
            check_aggregate(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_aggregate(v, f"{where}[{i}]")


def km_summary(curves: dict[str, pd.DataFrame], labels: tuple[str, str], min_cell: int) -> dict[str, Any] | None:
    """Survival and numbers at risk at :data:`KM_DAYS` per arm, read from curves rebuilt from counts
    rounded up to multiples of *min_cell*; survival is None where nobody (rounded) is at risk."""
    if not curves:
        return None
    out: dict[str, Any] = {"days": list(KM_DAYS)}
    for arm, label in zip(("target", "comparator"), labels):
        curve = curves.get(label)
        if curve is None or curve.empty:
            return None
        table = curve.rename(columns={"at_risk": "n_risk"})
        safe = protect_km(table, min_cell)
        at_risk = km_at_risk(safe, KM_DAYS, int(table["n_risk"].iloc[0]), min_cell)
        t = safe["time"].to_numpy(dtype=float)
        s = safe["survival"].to_numpy(dtype=float)
        surv = []
        for day, n in zip(KM_DAYS, at_risk):
            i = int(np.searchsorted(t, day, side="right")) - 1
            value = 1.0 if i < 0 else float(s[i])
            surv.append(round(value, 4) if n > 0 else None)
        out[arm] = {"survival": surv, "at_risk": at_risk}
    return out


def _estimate(e: dict[str, Any], run: ComparisonRun, j: int, min_cell: int) -> dict[str, Any]:
    rec = {k: e.get(k) for k in ESTIMATE_KEYS}
    rec["primary"] = e["name"] == run.primary
    est = run.estimates[e["name"]][j] if e["name"] in run.estimates else None
    shown = rec["log_hr"] is not None and rec["se_log_hr"] is not None and est is not None
    rec["profile"] = est.profile if shown else None
    n_shown = all(isinstance(rec[k], int) for k in ("n_target", "n_comparator", "events_target", "events_comparator"))
    rec["km"] = km_summary(est.curves, (run.target, run.comparator), min_cell) if shown and n_shown and est.curves else None
    return rec


def comparison_aggregate(comp: dict[str, Any], run: ComparisonRun, min_cell: int) -> dict[str, Any]:
    """The shareable aggregate of one comparison (see the module docstring)."""
    adjustments = [{k: a.get(k) for k in ("name", "adjustment", "primary", "estimand", "n_target", "n_comparator",
                                          "max_abs_smd", "diagnostics")} for a in comp.get("adjustments", [])]
    outcomes = []
    for j, o in enumerate(comp["outcomes"]):
        estimates = [_estimate(e, run, j, min_cell) for e in o.get("estimates", [])]
        outcomes.append({"outcome": o["outcome"], "negative_control": o["negative_control"], "status": o["status"],
                         "label": o.get("label"), "estimates": estimates})
    return {"id": comp["id"], "target": comp["target"], "comparator": comp["comparator"], "status": comp["status"],
            "status_reason": comp.get("status_reason"), "primary_adjustment": comp.get("primary_adjustment"),
            "propensity": comp.get("propensity"), "diagnostics": comp.get("diagnostics", []),
            "attrition": comp.get("attrition", []), "adjustments": adjustments, "outcomes": outcomes}


def _missing_profiles(runs: list[ComparisonRun]) -> bool:
    return any(o.profile is None and "log_hr" in o.numbers for r in runs for est in r.estimates.values() for o in est)


def run_site(package: str | Path, db: str | Path, site: str, out: str | Path, *, work: str | Path | None = None,
             progress: Progress | None = None) -> dict[str, Any]:
    """Run the package at this site and write the bundle to *out*; returns the aggregates."""
    from follicle.network.report import site_summary_html

    site = check_site_name(site)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InputError(f"--out {out}: must name a .zip file")
    pkg = read_package(package)
    spec = pkg.spec
    scratch = Path(tempfile.mkdtemp(prefix="follicle-site-"))
    try:
        def study(force: bool) -> Any:
            return run_study(spec, db, scratch / "results", work_dir=Path(work) if work else scratch / "work",
                             progress=progress, force=force)

        done = study(False)
        if work and _missing_profiles(done.runs):  # estimates cached by a version without profiles
            done = study(True)
        runs = {r.name: r for r in done.runs}
        results = done.results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    min_cell = spec.min_cell_count
    comparisons = [comparison_aggregate(c, runs[c["id"]], min_cell) for c in results["comparisons"]]
    doc = {"format": FORMAT, "package_id": pkg.package_id, "spec_hash": pkg.spec_hash, "study": spec.name,
           "site": site, "follicle_version": __version__, "package_follicle_version": pkg.follicle_version,
           "cdm_version_required": pkg.cdm_version, "cdm_fingerprint": results.get("cdm_fingerprint"),
           "min_cell_count": min_cell, "km_days": list(KM_DAYS), "comparisons": comparisons,
           "not_estimated": results.get("not_estimated", []), "warnings": results.get("warnings", [])}
    check_aggregate(doc)
    files = {AGGREGATES: json_bytes(doc)}
    files[SUMMARY] = site_summary_html(doc).encode()
    write_zip(out, files, {"format": FORMAT, "package_id": pkg.package_id, "site": site, "study": spec.name,
                           "follicle_version": __version__})
    return doc
