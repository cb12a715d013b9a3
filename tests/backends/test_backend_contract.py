"""Backend contract: one synthetic world, loaded by ``cdm load`` into DuckDB, PostgreSQL and local
Spark, gives the same load, checks, summary, fingerprint, cohorts, attrition and hazard ratios
(1e-9 relative) on all three; the CDM-based response study too. The same world served by a Spark
Connect server (``--db sc://HOST:PORT/;database=cdm``) gives them too.

The world (8,000 persons, seed 3) is written once as a Parquet folder, the form a network's
export takes. Spark shares one JVM session for the whole test run (see ``spark_home``); the Spark
Connect server is a second JVM (see ``spark_connect``).
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from follicle.cdm.check import run_checks
from follicle.cdm.connect import connect
from follicle.cdm.fingerprint import fingerprint
from follicle.cdm.load import load_cdm
from follicle.cdm.summary import summarise
from follicle.cli import app
from follicle.run.study import run_study
from follicle.study.spec import load_spec
from follicle.synth.build import build_world

REPO = Path(__file__).resolve().parents[2]
SPEC = load_spec(REPO / "studies" / "jaki_neuropsych.yaml")
PERSONS, SEED = 8_000, 3
BACKENDS = ["duckdb", "postgres", "spark", "spark-connect"]
COUNT = "persons"
runner = CliRunner()


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic world as a folder of Parquet files (one per non-empty CDM table)."""
    root = tmp_path_factory.mktemp("contract")
    db = root / "world.duckdb"
    build_world(PERSONS, SEED, db)
    folder = root / "parquet"
    folder.mkdir()
    con = duckdb.connect(str(db), read_only=True)
    try:
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            if con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]:
                con.execute(f"COPY {name} TO '{folder / name}.parquet' (FORMAT parquet)")
    finally:
        con.close()
    return folder


@pytest.fixture(scope="module")
def reference(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Everything computed on DuckDB: what every backend must reproduce."""
    return _everything(world_dir, str(tmp_path_factory.mktemp("duck") / "world.duckdb"), tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, world_dir: Path, reference: dict, tmp_path_factory):
    """(name, everything computed on that backend); DuckDB is the reference itself."""
    if request.param == "duckdb":
        yield "duckdb", reference
    elif request.param == "postgres":
        import psycopg
        from psycopg import sql

        pg_url = request.getfixturevalue("pg_url")
        name = f"follicle_contract_{uuid.uuid4().hex[:8]}"
        try:
            yield "postgres", _everything(world_dir, f"{pg_url.rstrip('/')}/{name}", tmp_path_factory)
        finally:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    elif request.param == "spark":
        home = request.getfixturevalue("spark_home")
        yield "spark", _everything(world_dir, f"spark://{home / 'contract'}", tmp_path_factory)
    else:
        url = request.getfixturevalue("spark_connect")
        yield "spark-connect", _everything(world_dir, f"spark://{tmp_path_factory.mktemp('served')}",
                                           tmp_path_factory, served=url)


def _everything(world_dir: Path, target: str, tmp_path_factory: pytest.TempPathFactory, served: str | None = None) -> dict:
    """Load the world into *target*, then check, summarise, fingerprint, count the cohorts and run
    the study there; with *served* (a Spark Connect URL), load into the local folder *target*,
    put its tables in the server's catalog and do the rest through the server, by the CLI."""
    loaded = load_cdm(world_dir, target)
    if served:
        from follicle.cdm.spark import warehouse

        serve(served, warehouse(target), "cdm")
        target = f"{served}/;database=cdm"
        checks = _cli("cdm", "check", "--db", target)["checks"]
        summary = _cli("cdm", "summary", "--db", target)
    else:
        con = connect(target, read_only=not target.startswith(("postgres", "spark")))
        try:
            checks = [r.model_dump() for r in run_checks(con)]
            summary = summarise(con).model_dump(mode="json")  # as `cdm summary --json` prints it
        finally:
            con.disconnect()
    cohorts = _cli("cohorts", str(REPO / "studies" / "jaki_neuropsych.yaml"), "--db", target)
    run = run_study(SPEC, target, tmp_path_factory.mktemp("out") / "results", force=True)
    return {"rows": loaded.rows, "checks": checks, "summary": summary, "fingerprint": fingerprint(target),
            "cohorts": cohorts, "runs": run.runs, "results": run.results}


def _cli(*args: str) -> dict:
    """The JSON document a command prints with ``--json`` (it must succeed)."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def serve(url: str, folder: Path, database: str) -> list[str]:
    """Put the CDM's Parquet table folders under *folder* in *database* of a Spark Connect server's
    catalog, as docs/scale.md tells a cluster's administrator to (its SQL block, one table per
    folder), through a session of the server; return the tables."""
    from pyspark.sql import SparkSession

    block = (REPO / "docs" / "scale.md").read_text().split("```sql\n", 1)[1].split("```", 1)[0]
    create_db, create_table = [line for line in block.splitlines() if line.startswith("CREATE")]
    tables = sorted(p.name for p in folder.iterdir())
    session = SparkSession.builder.remote(url).create()
    try:
        session.sql(create_db.rstrip(";").replace(" cdm", f" {database}"))
        for name in tables:
            session.sql(create_table.rstrip(";").replace("cdm.person", f"{database}.{name}")
                        .replace("/data/cdm-spark/warehouse/person", str(folder / name)))
    finally:
        session.stop()
    return tables


def test_load_check_summary_fingerprint(backend, reference):
    name, got = backend
    assert got["rows"]["person"] == PERSONS and got["rows"]["drug_exposure"] > PERSONS
    assert got["rows"] == reference["rows"]
    assert got["checks"] == reference["checks"]
    assert got["summary"] == reference["summary"]
    assert got["fingerprint"] == reference["fingerprint"], f"{name}: the same data hash differently"


def test_cohort_counts(backend, reference):
    """``follicle cohorts --json`` (stdout is only the JSON document: Spark prints nothing there)."""
    got = backend[1]["cohorts"]
    assert got == reference["cohorts"]
    assert len(json.dumps(got)) > 500


def test_identical_attrition_and_hazard_ratios(backend, reference):
    runs = {r.name: r for r in backend[1]["runs"]}
    ref = {r.name: r for r in reference["runs"]}
    assert sorted(runs) == sorted(ref) == sorted(SPEC.comparisons)
    compared = 0
    for name, r in ref.items():
        got = runs[name]
        assert got.attrition.to_dict("records") == r.attrition.to_dict("records")
        for cohort in (r.target, r.comparator):  # real people through every step
            assert r.attrition[r.attrition.cohort == cohort][COUNT].min() > 50, r.attrition
        for adj, estimates in r.estimates.items():
            for a, b in zip(estimates, got.estimates[adj], strict=True):
                assert a.outcome == b.outcome and a.not_estimable == b.not_estimable
                for key in ("hr", "hr_ci_low", "hr_ci_high", "log_hr", "se_log_hr", "p"):
                    x, y = a.numbers.get(key), b.numbers.get(key)
                    if x is None or (isinstance(x, float) and math.isnan(x)):
                        assert y is None or (isinstance(y, float) and math.isnan(y)), (name, adj, a.outcome, key)
                        continue
                    assert y == pytest.approx(x, rel=1e-9), (name, adj, a.outcome, key)
                    compared += key == "hr"
    assert compared >= 20  # most comparison x outcome pairs have a hazard ratio to compare


def test_identical_results_document(backend, reference):
    """Every published number is the same; only the target's name differs."""
    got, ref = backend[1]["results"], reference["results"]
    assert got["comparisons"] == ref["comparisons"]
    assert got["not_estimated"] == ref["not_estimated"]
    assert got["concept_sets"] == ref["concept_sets"]
