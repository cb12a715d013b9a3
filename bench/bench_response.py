"""Benchmarks for response analytics: time, peak memory and a ratio against a peer in the same run.

Run: PYTHONPATH=src python bench/bench_response.py [--quick]
Peers: statsmodels GLM (ML logistic) for Firth's extra cost, scikit-learn's unpenalised
LogisticRegression for fit_logistic, pandas read_csv for the checked CSV reader.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "response"))

from follicle.registry import read_visits  # noqa: E402
from follicle.response.endpoints import EndpointSettings, patient_endpoints  # noqa: E402
from follicle.response.firth import FirthLogisticRegression  # noqa: E402
from follicle.response.predictors import fit_logistic  # noqa: E402


def measure(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, dt, peak


def row(name, dt, peak, peer=None, peer_dt=None):
    ratio = f"{dt / peer_dt:.2f}x {peer}" if peer_dt else ""
    print(f"| {name} | {dt:.3f} s | {peak:.1f} MiB | {ratio} |", flush=True)


def logistic_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = rng.binomial(1, 1 / (1 + np.exp(-(X @ np.linspace(-0.5, 0.5, p) - 0.3))))
    return X, y


def main(quick: bool) -> None:
    print("| step | time | peak Python memory | ratio vs peer |\n|---|---|---|---|")
    for n, p in ((70, 8), (10_000, 10)):
        X, y = logistic_data(n, p)
        _, dt, pk = measure(lambda: FirthLogisticRegression().fit(X, y))
        _, pdt, _ = measure(lambda: sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit())
        row(f"Firth + profile CIs, n={n}, p={p}", dt, pk, "statsmodels GLM (ML, no profile)", pdt)
    n = 20_000 if quick else 100_000
    X, y = logistic_data(n, 10)
    d = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]).assign(y=y)
    _, dt, pk = measure(lambda: fit_logistic(d, "y", [f"x{i}" for i in range(10)], cv_folds=0))
    _, pdt, _ = measure(lambda: LogisticRegression(penalty=None, max_iter=1000).fit(X, y))
    row(f"fit_logistic (ORs, Wald CIs), n={n}, p=10", dt, pk, "sklearn LogisticRegression", pdt)
    _, dt, pk = measure(lambda: fit_logistic(d, "y", [f"x{i}" for i in range(10)], cv_folds=5))
    row(f"fit_logistic + 5-fold CV AUC/calibration, n={n}", dt, pk)

    patients = 2_000 if quick else 10_000
    rng = np.random.default_rng(1)
    days = np.array([0, 90, 180, 274, 365, 450])
    v = pd.DataFrame({
        "patient_id": np.repeat(np.arange(patients), len(days)).astype(str),
        "date": (pd.Timestamp("2022-01-01") + pd.to_timedelta(np.tile(days, patients) + np.repeat(rng.integers(0, 300, patients), len(days)), unit="D")).strftime("%Y-%m-%d"),
        "salt": np.clip(rng.normal(60, 25, patients * len(days)), 0, 100).round(1),
        "on_drug": np.tile([1, 1, 1, 1, 0, 0], patients),
    })
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "visits.csv"
        v.to_csv(path, index=False)
        visits, dt, pk = measure(lambda: read_visits(path))
        _, pdt, _ = measure(lambda: pd.read_csv(path))
        row(f"read_visits (checked), {len(v):,} rows", dt, pk, "pandas.read_csv (unchecked)", pdt)
    s = EndpointSettings(response="salt20", landmark_days=274, window_days=42)
    _, dt, pk = measure(lambda: patient_endpoints(visits, s))
    row(f"patient_endpoints, {patients:,} patients x {len(days)} visits", dt, pk)

    import cdm_world

    from follicle.study.salt_cohort import load_spec, run_study

    persons = 5_000 if quick else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.duckdb"
        cdm_world.build(db, n=persons, seed=1)
        spec = load_spec(Path(__file__).resolve().parents[1] / "studies" / "baricitinib_predictors.yaml")
        _, dt, pk = measure(lambda: run_study(spec, str(db)))
        row(f"CDM study (extract in DuckDB + models), {persons:,} starters", dt, pk)
    print(f"\nprocess peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    main(ap.parse_args().quick)
