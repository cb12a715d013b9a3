"""Whole-pipeline check of network pooling on synthetic AA worlds (issue 18, point 4; docs/network.md).

Four sites, each a synthetic world (:mod:`follicle.synth`) of its own seed, size and confounding
(the JAK-inhibitor choice's log OR on severity scaled x0.5 to x2), the smallest with few events; the
bundled study (one comparison, matching and crude, min cell count 5) packaged, run at each site and
pooled with ``--include-failing`` (crude fails balance by design). For every crude outcome pooled
from two sites or more: the likelihood pool against a Cox model stratified by site on the union of
those sites' analysis rows (the pipeline's own ``outcome_frame``; lifelines' stratified Cox), and
the normal-approximation pool against the same.

Run: PYTHONPATH=src python bench/validate_network_worlds.py [folder]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter

from follicle.cdm.connect import connect
from follicle.network.package import build_package
from follicle.network.pool import pool_bundles
from follicle.network.site import run_site
from follicle.run.estimate import outcome_frame
from follicle.study.population import build_population
from follicle.study.spec import StudySpec, load_spec
from follicle.synth.build import build_world
from follicle.synth.config import TreatmentConfig, WorldConfig

REPO = Path(__file__).resolve().parents[1]
#: (site, persons, seed, confounding scale)
SITES = [("a", 30_000, 41, 1.0), ("b", 20_000, 42, 2.0), ("c", 12_000, 43, 0.5), ("small", 4_000, 44, 1.5)]


def study_spec(folder: Path) -> Path:
    spec = load_spec(REPO / "studies" / "jaki_neuropsych.yaml")
    data = spec.model_dump(mode="json")
    data["comparisons"] = {"jaki_vs_corticosteroid": data["comparisons"]["jaki_vs_corticosteroid"]}
    data["analysis"]["adjustments"] = [{"kind": "matching", "name": "matching"}, {"kind": "crude", "name": "crude"}]
    data["min_cell_count"] = 5
    path = folder / "study.yaml"
    path.write_text(StudySpec.model_validate(data).to_yaml())
    return path


def world_config(scale: float) -> WorldConfig:
    base = TreatmentConfig()
    jaki = {k: v * scale if k == "severe" else v for k, v in base.class_log_or["jaki"].items()}
    return WorldConfig(treatment=base.model_copy(update={"class_log_or": {**base.class_log_or, "jaki": jaki}}))


def crude_rows(table: pd.DataFrame, outcome: str) -> pd.DataFrame:
    crude = SimpleNamespace(groups=None, weights=np.ones(len(table)))
    return outcome_frame(table, outcome, crude)[["time", "event", "treatment"]]


def main(folder: Path) -> None:
    t0 = time.perf_counter()
    spec_path = study_spec(folder)
    build_package(spec_path, folder / "pkg.zip")
    spec = load_spec(spec_path)
    tables = {}
    for site, persons, seed, scale in SITES:
        db = folder / f"{site}.duckdb"
        build_world(persons, seed, db, config=world_config(scale), overwrite=True)
        run_site(folder / "pkg.zip", db, site, folder / f"{site}.zip")
        con = connect(db, read_only=True)
        try:
            tables[site] = build_population(spec, con, "jaki_vs_corticosteroid").table
        finally:
            con.disconnect()
    res = pool_bundles([folder / f"{s}.zip" for s, *_ in SITES], folder / "pooled", exclude_failing=False)
    print(f"{'outcome':<22} {'sites':<16} {'events/site':<22} {'union Cox':>9} {'lik - union':>11} {'normal - union':>14}")
    worst_lik = worst_norm = 0.0
    for o in res["comparisons"][0]["outcomes"]:
        used = [s for s in o["sites"] if s["included"] and s["profile_shared"]]
        if o["adjustment"] != "crude" or len(used) < 2:
            continue
        frames = [crude_rows(tables[s["site"]], o["outcome"]).assign(site=i) for i, s in enumerate(used)]
        ref = float(CoxPHFitter().fit(pd.concat(frames), "time", "event", strata=["site"]).params_["treatment"])
        lik = next(p for p in o["pooled"] if p["method"] == "likelihood" and p["model"] == "fixed")["log_hr"]
        norm = next(p for p in o["pooled"] if p["method"] == "fixed")["log_hr"]
        worst_lik, worst_norm = max(worst_lik, abs(lik - ref)), max(worst_norm, abs(norm - ref))
        events = ",".join(str(int(f["event"].sum())) for f in frames)
        print(f"{o['outcome']:<22} {','.join(s['site'] for s in used):<16} {events:<22} {ref:>9.4f} "
              f"{lik - ref:>11.4f} {norm - ref:>14.4f}")
    print(f"max |likelihood - union| {worst_lik:.4f}; max |normal - union| {worst_norm:.4f}; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
