"""Coverage of the synthetic world's truth by every adjustment of the bundled study, over replicate worlds.

Each replicate builds a synthetic AA world (``follicle.synth.build_world``, its own seed) as an OMOP
CDM, and runs the bundled study (studies/jaki_neuropsych.yaml: cohorts, outcomes, covariates and
negative controls unchanged) with five adjustments instead of its single matching: crude, the
study's 1:1 matching (caliper 0.1 SD of the logit, random order), 5 PS strata, IPTW for the ATT
and IPTW for the ATE (stabilised). The pipeline is Follicle's own (``run_comparison``: PS, each
adjustment, Cox per outcome), without the report.

Two truths per comparison x outcome come from the world (``World.truth``): the ATT (marginal HR in
the target-class initiators) and the ATE (marginal HR in target- and comparator-class initiators
together). Each adjustment is scored against the estimand it targets (matching and IPTW ATT: ATT;
IPTW ATE: ATE; stratification: ATE, as its strata span everyone, although a stratified Cox model
pools within-stratum HRs; crude: none, shown against both) and, for reference, against the other.
A pair whose estimate is withheld or missing counts as a miss.

Usage::

    PYTHONPATH=src python bench/coverage_adjustments.py [--reps 20] [--persons 200000] [--seed 101] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"
ADJUSTMENTS = [
    {"kind": "crude", "name": "crude"},
    {"kind": "matching", "name": "matching", "caliper": 0.1, "caliper_scale": "std_logit", "ratio": 1,
     "order": "random", "seed": 0},
    {"kind": "stratification", "name": "ps_strata_5", "n_strata": 5},
    {"kind": "iptw", "name": "iptw_att", "estimand": "att", "stabilized": True},
    {"kind": "iptw", "name": "iptw_ate", "estimand": "ate", "stabilized": True},
]
TARGETS = {"crude": None, "matching": "ATT", "ps_strata_5": "ATE", "iptw_att": "ATT", "iptw_ate": "ATE"}
Z = 1.959963984540054


def study_spec():
    from follicle.study.spec import load_spec, parse_spec

    data = load_spec(STUDY).model_dump(mode="json")
    data["analysis"]["adjustments"] = ADJUSTMENTS
    data["analysis"]["primary"] = "matching"
    return parse_spec(data)


def one_world(persons: int, seed: int, work: Path) -> list[dict]:
    """Build one world, run every comparison, return one row per comparison x outcome x adjustment."""
    from follicle.cdm.connect import connect
    from follicle.run.cache import ArtifactStore
    from follicle.run.pipeline import run_comparison
    from follicle.study.population import StudySession, build_population, outcome_columns
    from follicle.synth.build import build_world

    db = work / f"world-{seed}.duckdb"
    world, _, att = build_world(persons, seed, db, truth_path=work / f"truth-{seed}.json", overwrite=True)
    ate = world.truth(estimand="ate")
    truth = {"ATT": {(e["comparison"], e["outcome"]): e["true_log_hr"] for e in att["effects"]},
             "ATE": {(e["comparison"], e["outcome"]): e["true_log_hr"] for e in ate["effects"]}}
    spec = study_spec()
    con = connect(db, read_only=True)
    rows = []
    try:
        with StudySession(spec, con) as session:
            store = ArtifactStore(work / f"cache-{seed}")
            for name in spec.comparisons:
                run = run_comparison(
                    spec, name, lambda n=name: build_population(spec, con, n, session=session, outcomes=[]),
                    lambda outcomes, n=name: outcome_columns(session, n, outcomes), store, f"world-{seed}")
                for adj, estimates in run.estimates.items():
                    for o in estimates:
                        n = o.numbers
                        rows.append({"world": seed, "comparison": name, "outcome": o.outcome, "adjustment": adj,
                                     "log_hr": n.get("log_hr"), "se": n.get("se_log_hr"),
                                     "true_att": truth["ATT"].get((name, o.outcome)),
                                     "true_ate": truth["ATE"].get((name, o.outcome))})
    finally:
        con.disconnect()
    db.unlink(missing_ok=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per adjustment: coverage of its own estimand's truth and of the other, bias, SDs."""
    out = []
    for adj, target in TARGETS.items():
        sub = [r for r in rows if r["adjustment"] == adj]
        est = np.array([np.nan if r["log_hr"] is None else r["log_hr"] for r in sub], float)
        se = np.array([np.nan if r["se"] is None else r["se"] for r in sub], float)
        rec = {"adjustment": adj, "estimand": target or "none (unadjusted)", "pairs": len(sub),
               "estimated": int(np.isfinite(est).sum())}
        for key in ("ATT", "ATE"):
            true = np.array([r[f"true_{key.lower()}"] for r in sub], float)
            covered = np.isfinite(est) & (np.abs(est - true) <= Z * se)
            rec[f"coverage_{key}"] = float(covered.mean())
            rec[f"mean_bias_{key}"] = float(np.nanmean(est - true))
        rec["mean_se"] = float(np.nanmean(se))
        out.append(rec)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rows", type=Path, help="also write every (world, comparison, outcome, adjustment) row here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="follicle-coverage-") as tmp:
        for r in range(args.reps):
            rows += one_world(args.persons, args.seed + r, Path(tmp))
            print(f"world {r + 1}/{args.reps} done, {time.perf_counter() - t0:.0f} s", flush=True)
    table = summarise(rows)
    if args.rows:
        args.rows.write_text(json.dumps(rows))
    result = {"reps": args.reps, "persons": args.persons, "seed": args.seed, "seconds": time.perf_counter() - t0,
              "table": table}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.reps} worlds x {args.persons:,} persons, {len(rows) // len(TARGETS)} comparison x outcome pairs "
          f"per adjustment, {result['seconds']:.0f} s")
    print(f"{'adjustment':<12} {'estimand':<20} {'cover ATT':>9} {'cover ATE':>9} {'bias ATT':>9} {'bias ATE':>9} {'mean SE':>8}")
    for rec in table:
        print(f"{rec['adjustment']:<12} {rec['estimand']:<20} {rec['coverage_ATT']:9.3f} {rec['coverage_ATE']:9.3f} "
              f"{rec['mean_bias_ATT']:+9.3f} {rec['mean_bias_ATE']:+9.3f} {rec['mean_se']:8.3f}")


if __name__ == "__main__":
    main()
