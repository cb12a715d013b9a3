"""Meta-analysis spec round trips; the bundled JAKi RCT data set and how it is built."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from follicle.errors import InputError
from follicle.synthesis.data import build_pairwise, load_jaki_rct
from follicle.synthesis.spec import MetaSpec, run_spec

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "studies" / "jaki_rct_meta.yaml"


def test_spec_round_trips_yaml_and_json():
    spec = MetaSpec.from_yaml(SPEC.read_text())
    assert MetaSpec.from_yaml(spec.to_yaml()) == spec
    assert MetaSpec.from_json(spec.to_json()) == spec
    assert MetaSpec.from_json(spec.to_json()).spec_hash() == spec.spec_hash()
    assert spec.knha and spec.method == "REML" and spec.subgroup == "drug"


def test_spec_rejects_bad_fields():
    with pytest.raises(ValidationError, match="surprise"):
        MetaSpec(name="x", data="d.csv", surprise=1)
    with pytest.raises(ValidationError, match="binary measure"):
        MetaSpec(name="x", data="d.csv", measure="MD", method="MH")
    with pytest.raises(ValidationError, match="knha"):
        MetaSpec(name="x", data="d.csv", method="EE", knha=True)
    with pytest.raises(ValidationError, match="baseline_risk"):
        MetaSpec.model_validate({"name": "x", "data": "d.csv", "grade": {"outcome": "o", "baseline_risk": 1.5}})


def test_bundled_data_is_what_the_builder_makes(shared_dir):
    arms = pd.read_csv(shared_dir / "data" / "trials" / "jaki_aa_rct_arms.csv")
    built = build_pairwise(arms)
    bundled = load_jaki_rct()
    pd.testing.assert_frame_equal(built.reset_index(drop=True), bundled, check_dtype=False)


def test_responders_reconstructed_from_percentages(shared_dir):
    arms = pd.read_csv(shared_dir / "data" / "trials" / "jaki_aa_rct_arms.csv")
    raw = arms["percent"] * arms["n"] / 100
    # no published figure falls on a half, so the rounding rule cannot matter
    assert not np.any(np.isclose(raw % 1, 0.5))
    data = load_jaki_rct()
    first = data.iloc[0]  # BRAVE-AA1 4 mg: 38.8% of 281 = 109.03 -> 109
    assert (first["events_t"], first["total_t"]) == (109, 281)
    # shared placebo arms are split without double counting (Cochrane Handbook 23.3.4)
    for trial, g in data.groupby("trial"):
        plc = arms[(arms["trial"] == trial) & (arms["arm"] == "placebo")].iloc[0]
        assert g["total_c"].sum() == plc["n"]
        assert g["events_c"].sum() == round(plc["percent"] * plc["n"] / 100)
    assert {"n_status_t", "n_status_c", "percent_source"} <= set(data.columns)


def test_builder_refuses_mixed_sources():
    arms = pd.DataFrame({
        "trial": ["T", "T"], "nct": ["N", "N"], "drug": ["d", "placebo"], "dose": ["1 mg", ""],
        "arm": ["active", "placebo"], "n": [100, 100], "n_status": ["x", "x"], "endpoint": ["SALT<=20"] * 2,
        "week": [24, 24], "percent": [30.0, 5.0], "percent_source": ["NEJM", "press release topline"],
    })
    with pytest.raises(InputError, match="different sources"):
        build_pairwise(arms)


def test_run_spec_on_bundled_data():
    spec = MetaSpec.from_yaml(SPEC.read_text())
    out = run_spec(spec, load_jaki_rct())
    overall = out["overall"]
    assert overall.k == 10 and overall.knha and overall.df == 9
    assert np.exp(overall.estimate) > 1  # JAK inhibitors raise the SALT <= 20 response rate
    assert out["subgroups"]["df"] == 2
    assert out["leave_one_out"]["estimable"] and len(out["leave_one_out"]["rows"]) == 10
    assert all(out[name]["estimable"] for name in ("influence", "egger", "trimfill", "grade"))
    sof = out["grade"]["summary_of_findings"]
    assert "risk with control (per 1,000)" in sof
