"""The CDM route of the response study on local Spark gives the same analysis as on DuckDB."""

import pytest

import cdm_world
from follicle.study.salt_cohort import load_spec, run_study
from test_salt_cohort import SPEC


@pytest.mark.spark
def test_spark_equals_duckdb(spark_home, tmp_path):
    db = tmp_path / "w.duckdb"
    cdm_world.build(db, n=300, seed=3)
    target = f"spark://{spark_home / 'response'}"
    cdm_world.build(target, n=300, seed=3)  # the same world, written to Spark's warehouse
    spec = load_spec(SPEC)
    on_spark, on_duck = run_study(spec, target), run_study(spec, str(db))
    assert on_duck["outcome"]["n"] > 100 and on_duck["outcome"]["events"] > 10
    assert on_spark["attrition"] == on_duck["attrition"]
    assert on_spark["outcome"] == on_duck["outcome"]
    assert len(on_duck["logistic"]["terms"]) > 3
    for a, b in zip(on_spark["logistic"]["terms"], on_duck["logistic"]["terms"], strict=True):
        assert a["term"] == b["term"]
        assert a["coef"] == pytest.approx(b["coef"], rel=1e-9, abs=1e-12)
