"""Benchmark: pooling 50 site bundles x 30 outcomes (issue 18, point 5).

Builds the aggregates of 50 simulated sites (sizes 300 to 20,000, one comparison, one adjustment,
30 outcomes of which 5 negative controls; each estimate with its Cox profile likelihood from
:func:`follicle.survival.profile.cox_profile`), then times :func:`follicle.network.pool.pool_documents`
(normal fixed and random with HKSJ, likelihood fixed and random, calibration) and the report HTML.
Peer, in the same run: the normal-approximation pooling alone (the meta-analysis engine's fixed and
REML + HKSJ fits) over the same 30 outcomes. Peak memory: tracemalloc of one call.

Run: PYTHONPATH=src python bench/bench_network.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench_meta import timed  # mean seconds per call, then peak traced MiB of one call

from follicle.network.archive import json_bytes, write_zip
from follicle.network.pool import pool_bundles, pool_documents, pool_normal
from follicle.network.site import AGGREGATES, FORMAT, SUMMARY
from follicle.network.report import pool_report_html
from follicle.survival import fit_outcome_model
from follicle.survival.profile import cox_profile

SITES, OUTCOMES, CONTROLS = 50, 30, 5


def site_estimate(rng: np.random.Generator, n: int, log_hr: float) -> dict:
    t = rng.integers(0, 2, n)
    rate = rng.uniform(2e-4, 1e-3) * np.exp(log_hr * t)
    ev_time = rng.exponential(1 / rate)
    cens = rng.uniform(30, 1500, n)
    time_, event = np.ceil(np.minimum(ev_time, cens)), ev_time <= cens
    row = fit_outcome_model(time_, event, t, robust_se=False).row()
    prof = cox_profile(time_, event, t, center=row["coef"], se=row["se"])
    diag = [{"name": "max |SMD| after adjustment", "status": "PASS"}]
    return {"name": "matching", "adjustment": "matching", "primary": True, "log_hr": row["coef"], "se_log_hr": row["se"],
            "hr": row["hr"], "hr_ci_low": row["ci_low"], "hr_ci_high": row["ci_high"], "n_target": int(t.sum()),
            "n_comparator": int(n - t.sum()), "events_target": int(event[t == 1].sum()),
            "events_comparator": int(event[t == 0].sum()), "diagnostics": diag, "diagnostics_overall": "PASS",
            "profile": prof.to_dict(), "km": None}


def build_docs(seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(300, 20_000, SITES).astype(int)
    truth = [0.0 if j < CONTROLS else rng.normal(0.2, 0.3) for j in range(OUTCOMES)]
    docs = []
    for i, n in enumerate(sizes):
        outcomes = [{"outcome": f"o{j}", "negative_control": j < CONTROLS, "status": "estimated",
                     "estimates": [site_estimate(rng, int(n), truth[j])]} for j in range(OUTCOMES)]
        docs.append({"package_id": "p" * 64, "site": f"site{i}", "study": "bench", "_file": f"site{i}.zip",
                     "comparisons": [{"id": "c", "target": "T", "comparator": "C", "status": "estimated",
                                      "outcomes": outcomes}]})
    return docs


def main() -> None:
    t0 = time.perf_counter()
    docs = build_docs()
    print(f"built {SITES} sites x {OUTCOMES} outcomes with profiles in {time.perf_counter() - t0:.1f} s "
          f"(not timed below); grid points per profile: "
          f"{np.median([len(o['estimates'][0]['profile']['beta']) for d in docs for o in d['comparisons'][0]['outcomes']]):.0f}")

    def peer() -> None:
        for j in range(OUTCOMES):
            es = [d["comparisons"][0]["outcomes"][j]["estimates"][0] for d in docs]
            pool_normal(np.array([e["log_hr"] for e in es]), np.array([e["se_log_hr"] for e in es]),
                        [d["site"] for d in docs])

    res = pool_documents(docs)
    pool_t, pool_m = timed(lambda: pool_documents(docs), 3)
    html_t, html_m = timed(lambda: pool_report_html(res), 3)
    peer_t, peer_m = timed(peer, 3)
    print(f"{'step':<44} {'seconds':>8} {'peak MiB':>9} {'ratio vs peer':>14}")
    print(f"{'pool_documents (normal + likelihood, all)':<44} {pool_t:>8.3f} {pool_m:>9.1f} {pool_t / peer_t:>14.2f}")
    print(f"{'pool report HTML (SVG forests)':<44} {html_t:>8.3f} {html_m:>9.1f} {html_t / peer_t:>14.2f}")
    print(f"{'peer: normal approximation only (EE + HKSJ)':<44} {peer_t:>8.3f} {peer_m:>9.1f} {1.0:>14.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_bundles(docs, Path(tmp))
        cli_t, cli_m = timed(lambda: pool_bundles(paths, Path(tmp) / "pooled"), 1)
    print(f"{'pool_bundles (50 zips: read, pool, publish)':<44} {cli_t:>8.3f} {cli_m:>9.1f} {cli_t / peer_t:>14.2f}")
    print(f"total pool + report: {pool_t + html_t:.3f} s; end to end from the zips: {cli_t:.3f} s, for {SITES} sites "
          f"x {OUTCOMES} outcomes (limit 2 s)")


def write_bundles(docs: list[dict], folder: Path) -> list[Path]:
    """The docs as site bundles (the format :func:`follicle.network.pool.read_bundle` checks)."""
    paths = []
    for d in docs:
        doc = {k: v for k, v in d.items() if k != "_file"} | {"format": FORMAT}
        path = folder / f"{d['site']}.zip"
        write_zip(path, {AGGREGATES: json_bytes(doc), SUMMARY: b"<p>bench</p>"},
                  {"format": FORMAT, "package_id": d["package_id"], "site": d["site"]})
        paths.append(path)
    return paths


if __name__ == "__main__":
    main()
