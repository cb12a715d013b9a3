"""Benchmark the default covariate set and the large-scale propensity model at 1M persons.

A synthetic CDM is generated with DuckDB SQL (cached outside the repo, default /tmp/follicle-bench):
``--persons`` people, each a new user of drug A or drug B on a date in 2012-2019 (more likely B
with some confounding conditions), with 40 conditions (20,000 concepts), 30 other drug exposures
(6,000 clinical drugs rolled up to 2,000 ingredients through concept_ancestor), 15 procedures
(5,000 concepts) and 25 measurements (2,000 concepts) over 2010-2020 (about 10 records in the year
before index), drawn with skewed (Zipf-like) frequencies, so the default set has tens of thousands
of sparse covariates.

Then, each in its own child process (peak = that child's max RSS, DuckDB's memory included):

* **follicle**: ``build_population`` (cohorts and the default covariate set in the database, only
  the (person, covariate) rows returned), ``design_matrix`` (sparse CSR), the L1 propensity model
  with cross-validated penalty (``PropensityModel(penalty="l1")``), 5 PS strata and IPTW with the
  balance of every covariate; each step timed.
* **plain** (peer for the extraction): the population's events of the four domains read into
  pandas (one query per domain), the windows, ingredient roll-up and exclusions done with pandas,
  then the same sparse matrix built with scipy.

Usage::

    PYTHONPATH=src python bench/bench_covariates.py [--persons 1000000] [--cache /tmp/follicle-bench] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DRUG_A, DRUG_B, OUTCOME = 1, 2, 900_000_001
N_CONDITIONS, N_DRUGS, N_INGREDIENTS, N_PROCEDURES, N_MEASUREMENTS = 20_000, 6_000, 2_000, 5_000, 2_000
SPEC = {
    "name": "bench_default_covariates",
    "concept_sets": {"a": {"domain": "drug", "include": [f"OMOP:{DRUG_A}"]},
                     "b": {"domain": "drug", "include": [f"OMOP:{DRUG_B}"]},
                     "o": {"domain": "condition", "include": [f"OMOP:{OUTCOME}"]}},
    "cohorts": {"a": {"entry": {"concept_set": "a"}, "prior_observation_days": 365},
                "b": {"entry": {"concept_set": "b"}, "prior_observation_days": 365}},
    "outcomes": {"o": {"concept_set": "o"}},
    "time_at_risk": {"start_offset": 1, "end_offset": 99999},
    "covariates": {"demographics": False, "default_set": True},
    "comparisons": {"a_vs_b": {"target": "a", "comparator": "b", "outcomes": ["o"]}},
    "analysis": {"propensity": {"penalty": "l1", "cv_folds": 5},
                 "adjustments": [{"kind": "stratification", "name": "strata", "n_strata": 5},
                                 {"kind": "iptw", "name": "iptw", "estimand": "ate"}]},
}


def peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def build_cdm(path: Path, persons: int, seed: int = 1) -> float:
    """Write the synthetic CDM with DuckDB SQL; returns the seconds it took."""
    import duckdb

    from follicle.cdm import schema

    t0 = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    con.execute(f"SELECT setseed({seed / 1000})")
    for stmt in schema.create_statements("5.4", "duckdb"):
        con.execute(stmt)
    con.execute(f"""CREATE TEMP TABLE p AS SELECT range + 1 AS person_id, random() AS u1, random() AS u2, random() AS u3,
        DATE '2012-01-01' + CAST(floor(random() * 2900) AS INTEGER) AS index_date FROM range({persons})""")
    con.execute("""INSERT INTO person (person_id, gender_concept_id, year_of_birth, race_concept_id, ethnicity_concept_id)
        SELECT person_id, CASE WHEN u1 < 0.55 THEN 8532 ELSE 8507 END, 1930 + CAST(floor(u2 * 70) AS INTEGER), 0, 0 FROM p""")
    con.execute("""INSERT INTO observation_period SELECT person_id, person_id, DATE '2010-01-01', DATE '2020-12-31', 32880 FROM p""")

    def events(table: str, cols: str, per_person: int, n_concepts: int, offset: int, extra: str = "") -> None:
        # concept rank ~ n * u^3 (a few common concepts, a long tail), dates uniform over 2010-2020
        con.execute(f"""INSERT INTO {table} ({cols})
            SELECT row_number() OVER (), person_id, {offset} + CAST(floor({n_concepts} * pow(random(), 3)) AS BIGINT),
                   DATE '2010-01-01' + CAST(floor(random() * 4017) AS INTEGER) {extra}
            FROM p, range({per_person})""")

    events("condition_occurrence", "condition_occurrence_id, person_id, condition_concept_id, condition_start_date, "
           "condition_type_concept_id", 40, N_CONDITIONS, 100_000_000, ", 32817")
    events("procedure_occurrence", "procedure_occurrence_id, person_id, procedure_concept_id, procedure_date, "
           "procedure_type_concept_id", 15, N_PROCEDURES, 300_000_000, ", 32817")
    events("measurement", "measurement_id, person_id, measurement_concept_id, measurement_date, measurement_type_concept_id",
           25, N_MEASUREMENTS, 400_000_000, ", 32817")
    con.execute(f"""INSERT INTO drug_exposure (drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date,
            drug_exposure_end_date, drug_type_concept_id)
        SELECT row_number() OVER (), person_id, d, s, s + CAST(floor(random() * 90) AS INTEGER), 32838 FROM (
            SELECT person_id, 200000000 + CAST(floor({N_DRUGS} * pow(random(), 3)) AS BIGINT) AS d,
                   DATE '2010-01-01' + CAST(floor(random() * 4017) AS INTEGER) AS s FROM p, range(30))""")
    # confounding: the commonest conditions make drug B more likely; the outcome depends on them too
    con.execute(f"""CREATE TEMP TABLE conf AS SELECT p.person_id,
            count(*) FILTER (WHERE condition_concept_id < 100000020 AND condition_start_date < index_date) AS k
        FROM p LEFT JOIN condition_occurrence c USING (person_id) GROUP BY 1""")
    n = con.execute("SELECT max(drug_exposure_id) FROM drug_exposure").fetchone()[0]
    con.execute(f"""INSERT INTO drug_exposure (drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date,
            drug_exposure_end_date, drug_type_concept_id)
        SELECT {n} + p.person_id, p.person_id, CASE WHEN u3 < 1 / (1 + exp(-(-0.3 + 0.25 * k))) THEN {DRUG_B} ELSE {DRUG_A} END,
               index_date, index_date + 30, 32838 FROM p JOIN conf USING (person_id)""")
    m = con.execute("SELECT max(condition_occurrence_id) FROM condition_occurrence").fetchone()[0]
    con.execute(f"""INSERT INTO condition_occurrence (condition_occurrence_id, person_id, condition_concept_id,
            condition_start_date, condition_type_concept_id)
        SELECT {m} + row_number() OVER (), p.person_id, {OUTCOME}, index_date + 1 + CAST(floor(random() * 1000) AS INTEGER), 32817
        FROM p JOIN conf USING (person_id) WHERE random() < 0.05 * exp(0.2 * k)""")
    # vocabulary: clinical drugs 2e8 + i -> ingredient 1e6 + i % N_INGREDIENTS; the two study drugs are ingredients
    con.execute(f"""INSERT INTO concept (concept_id, concept_name, domain_id, vocabulary_id, concept_class_id,
            standard_concept, concept_code, valid_start_date, valid_end_date)
        SELECT 1000000 + range, 'ingredient ' || range, 'Drug', 'RxNorm', 'Ingredient', 'S', CAST(range AS VARCHAR),
               DATE '1970-01-01', DATE '2099-12-31' FROM range({N_INGREDIENTS})
        UNION ALL SELECT {DRUG_A}, 'drug A', 'Drug', 'RxNorm', 'Ingredient', 'S', 'A', DATE '1970-01-01', DATE '2099-12-31'
        UNION ALL SELECT {DRUG_B}, 'drug B', 'Drug', 'RxNorm', 'Ingredient', 'S', 'B', DATE '1970-01-01', DATE '2099-12-31'""")
    con.execute(f"""INSERT INTO concept_ancestor
        SELECT 1000000 + range % {N_INGREDIENTS}, 200000000 + range, 1, 1 FROM range({N_DRUGS})
        UNION ALL SELECT 1000000 + range, 1000000 + range, 0, 0 FROM range({N_INGREDIENTS})
        UNION ALL SELECT {DRUG_A}, {DRUG_A}, 0, 0 UNION ALL SELECT {DRUG_B}, {DRUG_B}, 0, 0""")
    con.close()
    tmp.rename(path)
    return time.perf_counter() - t0


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds; CPU = user + system of every thread of this process (DuckDB's included)."""
    return time.perf_counter(), time.process_time()


def run_follicle(db: str) -> dict:
    import ibis

    from follicle.run.adjust import adjust
    from follicle.run.pipeline import dense_covariates, design_matrix, propensity_step
    from follicle.study.population import build_population
    from follicle.study.spec import parse_spec

    spec = parse_spec(SPEC)
    steps: dict[str, list[float]] = {}

    def timed(label: str, fn, *args, **kwargs):
        w0, c0 = clock()
        out = fn(*args, **kwargs)
        w1, c1 = clock()
        steps[label] = [w1 - w0, c1 - c0]
        return out

    con = ibis.duckdb.connect(db, read_only=True)
    pop = timed("cohorts + default covariates in the database (rows to Python)", build_population, spec, con, "a_vs_b",
                outcomes=[])
    X, names = timed("sparse design matrix (CSR)", design_matrix, pop)
    treat = pop.table["treatment"].to_numpy()
    ps = timed("L1 propensity model, 5-fold CV along the penalty path", propensity_step, spec, X, names, treat)
    dense = dense_covariates(pop.table)
    balance = {}
    for a in spec.analysis.adjustments:
        cohort = timed(f"{a.kind}: weights + balance of every covariate", adjust, a, treat, ps.ps, X, names, dense,
                       threshold=0.1)
        balance[a.name] = cohort.max_abs_smd
    return {"persons": int(len(pop.table)), "target": int(treat.sum()), "covariates": int(X.shape[1]),
            "nonzero": int(X.nnz), "rows_from_db": int(len(pop.sparse_covariates)), "auc": ps.auc,
            "max_abs_smd_after": balance, "steps": steps, "total_s": sum(v[0] for v in steps.values()),
            "total_cpu_s": sum(v[1] for v in steps.values()), "peak_rss_gib": peak_rss_gib()}


def run_plain(db: str) -> dict:
    """The peer: the same covariates with pandas from the events of the population."""
    import duckdb
    import numpy as np
    import pandas as pd
    from scipy import sparse

    t0, c0 = clock()
    con = duckdb.connect(db, read_only=True)
    people = con.execute(f"""SELECT person_id, min(drug_exposure_start_date) AS index_date FROM drug_exposure
        WHERE drug_concept_id IN ({DRUG_A}, {DRUG_B}) GROUP BY 1""").df()
    con.register("people", people)
    idx = people.set_index("person_id")["index_date"]
    parts = []
    for table, concept, start, end, ids in (
            ("condition_occurrence", "condition_concept_id", "condition_start_date", None, (102, 104)),
            ("procedure_occurrence", "procedure_concept_id", "procedure_date", None, (502, 504)),
            ("measurement", "measurement_concept_id", "measurement_date", None, (702, 704)),
            ("drug_exposure", "drug_concept_id", "drug_exposure_start_date", "drug_exposure_end_date", (402, 404))):
        cols = f"e.person_id, {concept} AS concept_id, {start} AS s" + (f", {end} AS e" if end else "")
        ev = con.execute(f"SELECT {cols} FROM {table} e JOIN people USING (person_id)").df()
        first = (ev["s"] - ev.person_id.map(idx)).dt.days
        last = (ev["e"] - ev.person_id.map(idx)).dt.days if end else first
        ev = ev.assign(first=first, last=last)
        ev = ev[(ev["first"] <= 0) & (ev["last"] >= -365) & (ev.concept_id != 0) & ~ev.concept_id.isin([DRUG_A, DRUG_B])]
        if end:
            anc = con.execute("SELECT descendant_concept_id AS concept_id, ancestor_concept_id AS ing FROM concept_ancestor "
                              "JOIN concept ON concept_id = ancestor_concept_id WHERE concept_class_id = 'Ingredient'").df()
            ev = ev.merge(anc, on="concept_id", how="left")
            ev["concept_id"] = ev["ing"].fillna(ev["concept_id"]).astype("int64")
        per = ev.groupby(["person_id", "concept_id"], sort=False)["last"].max().reset_index()
        parts.append(pd.DataFrame({"person_id": per.person_id, "covariate_id": per.concept_id * 1000 + ids[0]}))
        recent = per[per["last"] >= -30]
        parts.append(pd.DataFrame({"person_id": recent.person_id, "covariate_id": recent.concept_id * 1000 + ids[1]}))
    rows = pd.concat(parts, ignore_index=True)
    row = pd.Index(people.person_id).get_indexer(rows.person_id)
    cov, col = np.unique(rows.covariate_id.to_numpy(), return_inverse=True)
    X = sparse.csr_matrix((np.ones(len(rows)), (row, col)), shape=(len(people), len(cov)))
    w1, c1 = clock()
    return {"persons": int(len(people)), "covariates": int(X.shape[1]), "nonzero": int(X.nnz),
            "total_s": w1 - t0, "total_cpu_s": c1 - c0, "peak_rss_gib": peak_rss_gib()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/follicle-bench"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=["follicle", "plain"])
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.child:
        out = run_follicle(args.db) if args.child == "follicle" else run_plain(args.db)
        print(json.dumps(out))
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    db = args.cache / f"covariates-{args.persons}.duckdb"
    built = None if db.exists() else build_cdm(db, args.persons)
    results = {"persons": args.persons, "cdm_build_s": built}
    for which in ("follicle", "plain"):
        res = subprocess.run([sys.executable, __file__, "--child", which, "--db", str(db)], capture_output=True,
                             text=True, check=True)
        results[which] = json.loads(res.stdout.strip().splitlines()[-1])
    f, p = results["follicle"], results["plain"]
    extract = [f["steps"]["cohorts + default covariates in the database (rows to Python)"][i]
               + f["steps"]["sparse design matrix (CSR)"][i] for i in (0, 1)]
    results["extraction_ratio_plain_over_follicle"] = p["total_s"] / extract[0]
    results["extraction_cpu_ratio_plain_over_follicle"] = p["total_cpu_s"] / extract[1]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.persons:,} persons; CDM build {built if built is None else round(built, 1)} s")
    print(f"follicle: {f['persons']:,} persons ({f['target']:,} target), {f['covariates']:,} covariates, "
          f"{f['nonzero']:,} non-zero; AUC {f['auc']:.3f}; max |SMD| after {f['max_abs_smd_after']}")
    for step, (wall, cpu) in f["steps"].items():
        print(f"  {step:<65} {wall:8.1f} s wall {cpu:8.1f} s CPU")
    print(f"  total {f['total_s']:.1f} s wall, {f['total_cpu_s']:.1f} s CPU, peak RSS {f['peak_rss_gib']:.2f} GiB")
    print(f"plain pandas extraction (peer): {p['covariates']:,} covariates, {p['nonzero']:,} non-zero, "
          f"{p['total_s']:.1f} s wall, {p['total_cpu_s']:.1f} s CPU, peak RSS {p['peak_rss_gib']:.2f} GiB; "
          f"ratio plain / follicle extraction: wall {results['extraction_ratio_plain_over_follicle']:.2f}, "
          f"CPU {results['extraction_cpu_ratio_plain_over_follicle']:.2f}")


if __name__ == "__main__":
    main()
