"""The Wada-Irimada predictor study on the synthetic world recovers its true response model.

The synthetic world (follicle.synth, issue 3) draws SALT <= 20 by week 36 from a logistic model
(``WorldConfig.response``: class intercept, disease duration <= 4 y, prior IVMP, baseline
SALT <= 95, female sex, ophiasis). The study's other predictors (age, atopic dermatitis, ClinRO)
have no effect there, so their true coefficient is 0. Slow: a 100,000-person world.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from test_salt_cohort import SPEC

synth = pytest.importorskip("follicle.synth", reason="follicle.synth not on this branch yet")
if not hasattr(synth, "build_world"):
    pytest.skip("follicle.synth.build_world not available (synthetic world not merged)", allow_module_level=True)


@pytest.mark.slow
def test_recovers_true_response_coefficients(tmp_path):
    from follicle.cli import app

    db = tmp_path / "world.duckdb"
    world, _, _ = synth.build_world(100_000, 1, db)
    rc = synth.WorldConfig().response
    truth = {"(Intercept)": rc.intercept["jaki"], "female": rc.female, "aa_type[ophiasis]": rc.ophiasis,
             "duration_le4": rc.duration_le_4y, "ivmp": rc.ivmp, "baseline_salt_le95": rc.baseline_salt_le_95,
             "age": 0.0, "atopic_dermatitis": 0.0, "eyebrow_clinro": 0.0, "eyelash_clinro": 0.0}
    res = CliRunner().invoke(app, ["response", "cdm", str(SPEC), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    terms = {t["term"]: t for t in json.loads(res.stdout)["logistic"]["terms"]}
    for term, beta in truth.items():
        assert terms[term]["ci_low"] <= np.exp(beta) <= terms[term]["ci_high"], (term, beta, terms[term])
