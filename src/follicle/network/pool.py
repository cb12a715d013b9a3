"""Pooling of site bundles: per comparison x outcome x adjustment, the normal approximation (fixed
and random effects, the meta-analysis engine with Hartung-Knapp-Sidik-Jonkman) and the
sites' profile likelihoods (fixed and random effects, :mod:`follicle.synthesis.likelihood`).

``follicle network pool SITE.zip... --out DIR`` writes ``DIR/results.json`` and ``DIR/report.html``
(the folder published as a whole). Bundles of different packages, or two bundles of one site, are
refused. A site whose estimate failed balance, equipoise or EASE is left out of the pool and
listed with the reason, as is a site that shared no estimate (not estimable or withheld for small
counts); MDRR is reported but does not exclude (a site too small alone is what pooling is for).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from follicle import __version__
from follicle.causal import calibrate_ci, fit_null
from follicle.errors import InputError
from follicle.network.archive import parse_json, read_zip
from follicle.network.site import AGGREGATES, FORMAT, SUMMARY
from follicle.run import diagnostics as dx
from follicle.synthesis import generic_effects, meta_analysis
from follicle.synthesis.likelihood import LikelihoodPool, pool_fixed, pool_random

#: diagnostics whose failure leaves a site out of the pool
EXCLUDING = (dx.BALANCE, dx.EQUIPOISE, dx.EASE)
MAX_BUNDLES = 500
Z95 = 1.959963984540054


def read_bundle(path: str | Path) -> dict[str, Any]:
    """The aggregates of the site bundle at *path* (checked by :func:`read_zip`)."""
    manifest, files = read_zip(Path(path), kind="site bundle", expected={AGGREGATES, SUMMARY})
    doc = parse_json(files[AGGREGATES], f"{path}: {AGGREGATES}")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: {AGGREGATES} is not a {FORMAT} document")
    for key in ("package_id", "site", "study", "comparisons"):
        if key not in doc:
            raise InputError(f"{path}: {AGGREGATES} has no {key!r}")
    if manifest.get("package_id") != doc["package_id"] or manifest.get("site") != doc["site"]:
        raise InputError(f"{path}: {AGGREGATES} and the manifest disagree on the package or the site")
    doc["_file"] = str(path)
    return doc


def check_same_package(docs: Sequence[dict[str, Any]]) -> None:
    """Refuse bundles of different packages, and two bundles of one site."""
    if not docs:
        raise InputError("no site bundles given")
    if len(docs) > MAX_BUNDLES:
        raise InputError(f"{len(docs)} bundles; at most {MAX_BUNDLES} are pooled at once")
    ids = {d["package_id"] for d in docs}
    if len(ids) > 1:
        lines = [f"{d['_file']}: site {d['site']}, study {d['study']}, package {d['package_id'][:12]}" for d in docs]
        raise InputError("the bundles come from different study packages; pool only bundles of one package:\n  "
                         + "\n  ".join(lines))
    seen: dict[str, str] = {}
    for d in docs:
        if d["site"] in seen:
            raise InputError(f"site {d['site']!r} appears twice ({seen[d['site']]} and {d['_file']}); pool each site once")
        seen[d["site"]] = d["_file"]


def _exclusion(e: dict[str, Any], exclude_failing: bool) -> tuple[str | None, str | None]:
    """(why a site's estimate is left out of the pool or None, the diagnostics it failed or None)."""
    if e.get("log_hr") is None or e.get("se_log_hr") is None:
        return f"no estimate shared ({e.get('label') or e.get('status') or 'not estimated'})", None
    failed = [d["name"] for d in e.get("diagnostics") or [] if d.get("status") == "FAIL" and d.get("name") in EXCLUDING]
    note = f"failed diagnostics: {', '.join(failed)}" if failed else None
    return (note if exclude_failing else None), note


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _row(method: str, model: str, approximation: str, log_hr: float, low: float, high: float, k: int,
         **extra: Any) -> dict[str, Any]:
    return {"method": method, "model": model, "approximation": approximation, "k": k,
            "log_hr": _finite(log_hr), "hr": _finite(math.exp(log_hr)) if math.isfinite(log_hr) else None,
            "hr_ci_low": _finite(math.exp(low)) if math.isfinite(low) else (0.0 if low == -math.inf else None),
            "hr_ci_high": _finite(math.exp(high)) if math.isfinite(high) else None, **extra}


def pool_normal(log_hr: np.ndarray, se: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Fixed (inverse variance) and random effects (REML tau^2, HKSJ CI) on the normal approximation."""
    effects = generic_effects(log_hr, se, labels=labels, measure="HR")
    out = []
    fixed = meta_analysis(effects, method="EE", qprofile=False)
    out.append(_row("fixed", "fixed", "normal", fixed.estimate, fixed.ci_low, fixed.ci_high, fixed.k,
                    se_log_hr=_finite(fixed.se), p=_finite(fixed.pval), i2=_finite(fixed.i2), q=_finite(fixed.q)))
    if len(log_hr) >= 2:
        rand = meta_analysis(effects, method="REML", knha=True, qprofile=False)
        out.append(_row("random", "random", "normal", rand.estimate, rand.ci_low, rand.ci_high, rand.k,
                        se_log_hr=_finite(rand.se), p=_finite(rand.pval), tau2=_finite(rand.tau2),
                        pi_low=_finite(math.exp(rand.pi_low)) if math.isfinite(rand.pi_low) else None,
                        pi_high=_finite(math.exp(rand.pi_high)) if math.isfinite(rand.pi_high) else None,
                        tau2_estimator="REML", ci="Hartung-Knapp-Sidik-Jonkman"))
    return out


def pool_likelihood(profiles: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    """Fixed and random-effects pooling of the sites' profile likelihoods (LR intervals)."""
    fixed: LikelihoodPool = pool_fixed(profiles)
    out = [_row("likelihood", "fixed", "likelihood", fixed.log_hr, fixed.ci_low, fixed.ci_high, fixed.k,
                ci="likelihood ratio (drop of 1.92)")]
    if len(profiles) >= 2:
        rand = pool_random(profiles)
        out.append(_row("likelihood", "random", "likelihood", rand.log_hr, rand.ci_low, rand.ci_high, rand.k,
                        tau=rand.tau, ci="profile likelihood ratio over tau", note=rand.note))
    return out


def pool_outcome(entries: list[tuple[str, dict[str, Any]]], *, exclude_failing: bool = True) -> dict[str, Any]:
    """Pool one comparison x outcome x adjustment from (site, estimate) pairs; with
    *exclude_failing* False a site failing the diagnostics stays in (``failed`` says so)."""
    sites, used, profiles = [], [], []
    for site, e in entries:
        why, failed = _exclusion(e, exclude_failing)
        rec = {"site": site, "included": why is None, "reason": why, "failed": failed,
               **{k: e.get(k) for k in ("n_target", "n_comparator", "events_target", "events_comparator", "hr",
                                         "hr_ci_low", "hr_ci_high", "log_hr", "se_log_hr", "diagnostics_overall",
                                         "mdrr")},
               "profile_shared": e.get("profile") is not None, "km": e.get("km")}
        sites.append(rec)
        if why is None:
            used.append((site, float(e["log_hr"]), float(e["se_log_hr"])))
            if e.get("profile") is not None:
                profiles.append((np.asarray(e["profile"]["beta"], float), np.asarray(e["profile"]["loglik"], float)))
    pooled: list[dict[str, Any]] = []
    notes = []
    if used:
        pooled += pool_normal(np.array([u[1] for u in used]), np.array([u[2] for u in used]), [u[0] for u in used])
    if profiles:
        pooled += pool_likelihood(profiles)
    if len(profiles) < len(used):
        notes.append(f"{len(used) - len(profiles)} included site(s) shared no profile likelihood: "
                     "the likelihood pool leaves them out")
    left_out = [{"site": s["site"], "reason": s["reason"]} for s in sites if not s["included"]]
    return {"pooled": pooled, "sites": sites, "left_out": left_out, "notes": notes}


def _calibrate(outcomes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Empirical null fitted to the likelihood-pooled negative controls (SE from the LR interval's
    width), and every likelihood-pooled estimate calibrated with it (Schuemie 2018)."""
    def lik(o: dict[str, Any]) -> dict[str, Any] | None:
        return next((p for p in o["pooled"] if p["approximation"] == "likelihood" and p["model"] == "fixed"), None)

    def log_se(p: dict[str, Any]) -> tuple[float, float] | None:
        if p is None or not p["hr_ci_low"] or not p["hr_ci_high"] or p["log_hr"] is None:
            return None
        return p["log_hr"], (math.log(p["hr_ci_high"]) - math.log(p["hr_ci_low"])) / (2 * Z95)

    controls = [log_se(lik(o)) for o in outcomes if o["negative_control"]]
    controls = [c for c in controls if c is not None and c[1] > 0]
    if len(controls) < 3:
        return None
    null = fit_null([c[0] for c in controls], [c[1] for c in controls])
    for o in outcomes:
        got = log_se(lik(o))
        if got is None or got[1] <= 0:
            continue
        cal = calibrate_ci(null, got[0], got[1])
        o["calibrated"] = {"hr": math.exp(cal.log_rr), "hr_ci_low": math.exp(cal.ci_low),
                           "hr_ci_high": math.exp(cal.ci_high)}
    return {"mean": null.mean, "sd": null.sd, "n_controls": null.n_controls,
            "controls": [{"log_hr": c[0], "se_log_hr": c[1]} for c in controls]}


def pool_documents(docs: Sequence[dict[str, Any]], *, exclude_failing: bool = True) -> dict[str, Any]:
    """The pooled results document of *docs* (site aggregates of one package); *exclude_failing*
    as :func:`pool_outcome`."""
    check_same_package(docs)
    first = docs[0]
    order: dict[str, dict[str, Any]] = {}
    for d in docs:
        for c in d["comparisons"]:
            head = order.setdefault(c["id"], {"id": c["id"], "target": c["target"], "comparator": c["comparator"],
                                              "outcomes": {}, "sites": []})
            head["sites"].append({"site": d["site"], "status": c["status"], "status_reason": c.get("status_reason"),
                                  "attrition": c.get("attrition", []), "propensity": c.get("propensity"),
                                  "adjustments": c.get("adjustments", [])})
            for o in c["outcomes"]:
                for e in o.get("estimates") or []:
                    key = (o["outcome"], e["name"])
                    slot = head["outcomes"].setdefault(key, {"outcome": o["outcome"],
                                                             "negative_control": o["negative_control"],
                                                             "adjustment": e["name"], "kind": e["adjustment"],
                                                             "primary": e.get("primary", False), "entries": []})
                    slot["entries"].append((d["site"], e))
    comparisons = []
    for head in order.values():
        outcomes = []
        for slot in head["outcomes"].values():
            entries = slot.pop("entries")
            outcomes.append({**slot, **pool_outcome(entries, exclude_failing=exclude_failing)})
        calibration = {}
        for adj in dict.fromkeys(o["adjustment"] for o in outcomes):
            calibration[adj] = _calibrate([o for o in outcomes if o["adjustment"] == adj])
        comparisons.append({"id": head["id"], "target": head["target"], "comparator": head["comparator"],
                            "sites": head["sites"], "calibration": calibration, "outcomes": outcomes})
    return {"format": "follicle-network-pool/1", "study": first["study"], "package_id": first["package_id"],
            "follicle_version": __version__, "sites": [{"site": d["site"], "file": Path(d["_file"]).name,
                                                        "follicle_version": d.get("follicle_version"),
                                                        "not_estimated": d.get("not_estimated", [])} for d in docs],
            "excluding_diagnostics": list(EXCLUDING) if exclude_failing else [], "comparisons": comparisons}


def pool_bundles(paths: Sequence[str | Path], out_dir: str | Path, *, exclude_failing: bool = True) -> dict[str, Any]:
    """Read the bundles at *paths*, pool them and publish ``results.json`` and ``report.html`` to
    *out_dir* as a whole (nothing is written when a bundle is refused)."""
    from follicle.network.archive import json_bytes
    from follicle.network.report import pool_report_html
    from follicle.run.publish import publish

    docs = [read_bundle(p) for p in paths]
    res = pool_documents(docs, exclude_failing=exclude_failing)
    publish(Path(out_dir), {"results.json": json_bytes(res), "report.html": pool_report_html(res).encode()})
    return res
