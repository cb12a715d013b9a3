"""CINeMA-style confidence rating: each rule of the CINeMA documentation (github.com/esm-ispm-unibe-ch/
cinema, docs/documentation.md; Nikolakopoulou et al. 2020, PLoS Med 17:e1003082) on constructed cases."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from follicle.errors import InputError
from follicle.synthesis.nma import cinema, contrasts_from_frame, decomp_design, netmeta, pairwise
from follicle.synthesis.nma.grade import DomainJudgement
from nma_networks import binary_network


def contrasts(rows):
    return pd.DataFrame(rows, columns=["study", "treatment1", "treatment2", "estimate", "se"])


@pytest.fixture(scope="module")
def triangle():
    """Equal-weight triangle: A:B draws 2/3 from S1 (A-B), 1/6 each from S2 (A-C) and S3 (B-C)."""
    res = netmeta(contrasts_from_frame(contrasts([("S1", "A", "B", 0.1, 0.2), ("S2", "A", "C", 0.3, 0.2),
                                                  ("S3", "B", "C", 0.1, 0.2)]), "MD"), reference="C")
    return res, decomp_design(res)


def by_comp(rows):
    return {r.comparison: {d.domain: d for d in r.domains} | {"confidence": r.confidence} for r in rows}


@pytest.mark.parametrize("rule, expected", [("majority", "no concerns"), ("average", "some concerns"),
                                            ("highest", "major concerns")])
def test_within_study_bias_rules(triangle, rule, expected):
    res, dec = triangle
    rob = {"S1": "low", "S2": "some concerns", "S3": "high"}
    rows = by_comp(cinema(res, dec, model="common", risk_of_bias=rob, rule=rule))
    got = rows["A:B"]["within-study bias"]
    assert got.rating == expected and got.suggested
    assert "low 67%" in got.reason and f"'{rule}'" in got.reason


def test_missing_study_judgement_is_not_assessed(triangle):
    res, dec = triangle
    rows = by_comp(cinema(res, dec, risk_of_bias={"S1": "low"}))
    assert rows["A:B"]["within-study bias"].rating is None
    assert "S2" in rows["A:B"]["within-study bias"].reason


def test_imprecision_counts_crossed_limits(triangle):
    res, dec = triangle
    row = {r.comparison: r for r in cinema(res, dec, model="common", clinically_important=0.05)}
    ci = (res.common.ci_low[0, 1], res.common.ci_high[0, 1])  # A:B, about -0.35 to 0.15 after pooling
    crossed = int(ci[0] < -0.05 < ci[1]) + int(ci[0] < 0.05 < ci[1])
    assert crossed == 2
    assert {d.domain: d.rating for d in row["A:B"].domains}["imprecision"] == "major concerns"
    wide = {d.domain: d.rating for d in by_comp(cinema(res, dec, model="common", clinically_important=5.0))["A:B"].values()
            if isinstance(d, DomainJudgement)}
    assert wide["imprecision"] == "no concerns"


def test_no_clinically_important_effect_means_not_assessed(triangle):
    res, dec = triangle
    rows = by_comp(cinema(res, dec))
    for dom in ("imprecision", "heterogeneity"):
        assert rows["A:B"][dom].rating is None and "clinically important" in rows["A:B"][dom].reason


def test_heterogeneity_table():
    res = netmeta(pairwise(binary_network(11, n_trt=4, k=14, tau=0.8), "OR"))
    dec = decomp_design(res)
    assert res.tau2 > 0 and res.random.predict_low is not None
    rows = cinema(res, dec, clinically_important=0.2)
    for r in rows:
        a, b = r.comparison.split(":")
        i, j = res.treatments.index(a), res.treatments.index(b)

        def cross(lo, hi):
            return int(lo < -0.2 < hi) + int(lo < 0.2 < hi)

        extra = cross(res.random.predict_low[i, j], res.random.predict_high[i, j]) - cross(
            res.random.ci_low[i, j], res.random.ci_high[i, j])
        got = {d.domain: d.rating for d in r.domains}["heterogeneity"]
        assert got == ("no concerns", "some concerns", "major concerns")[extra]


@pytest.mark.parametrize("p, expected", [(0.5, "no concerns"), (0.05, "some concerns"), (0.001, "major concerns")])
def test_incoherence_of_indirect_only_estimates_follows_design_by_treatment_p(p, expected):
    res = netmeta(pairwise(binary_network(12, n_trt=6, k=8, multi=False), "OR"))
    dec = decomp_design(res)
    dec = dataclasses.replace(dec, q_between_random={**dec.q_between_random, "p": p})
    indirect_only = [r for r in cinema(res, dec) if res.n_studies_matrix[
        res.treatments.index(r.comparison.split(":")[0]), res.treatments.index(r.comparison.split(":")[1])] == 0]
    assert indirect_only
    for r in indirect_only:
        assert {d.domain: d.rating for d in r.domains}["incoherence"] == expected


def test_incoherence_of_mixed_estimates_uses_shared_areas():
    res = netmeta(pairwise(binary_network(5, n_trt=5, k=14, incoherence=1.2, tau=0.1), "OR"))
    dec = decomp_design(res)
    from follicle.synthesis.nma import netsplit

    split = netsplit(res).set_index("comparison")
    rows = by_comp(cinema(res, dec, clinically_important=0.1))
    checked = 0
    for comp, r in rows.items():
        s = split.loc[comp]
        if not (np.isfinite(s["direct"]) and np.isfinite(s["indirect"])) or "same multi-arm" in r["incoherence"].reason \
                or "only from the multi-arm" in r["incoherence"].reason:
            continue

        def areas(lo, hi):
            return {x for x, ok in (("b", lo < -0.1), ("i", hi > -0.1 and lo < 0.1), ("a", hi > 0.1)) if ok}

        shared = len(areas(s["direct_low"], s["direct_high"]) & areas(s["indirect_low"], s["indirect_high"]))
        assert r["incoherence"].rating == {3: "no concerns", 2: "some concerns"}.get(shared, "major concerns")
        checked += 1
    assert checked >= 3


def test_indirect_evidence_only_from_the_same_multi_arm_studies_is_no_concern():
    three_arm = pd.DataFrame({"study": ["S1"] * 3 + ["S2"] * 3, "treatment": ["A", "B", "P"] * 2,
                              "events": [30, 20, 5, 35, 25, 4], "n": [100] * 6})
    res = netmeta(pairwise(three_arm, "OR"), reference="P")
    rows = by_comp(cinema(res, decomp_design(res), clinically_important=0.2))
    assert rows["A:P"]["incoherence"].rating == "no concerns"
    assert "multi-arm" in rows["A:P"]["incoherence"].reason


def test_overrides_and_confidence_levels(triangle):
    res, dec = triangle
    over = {"*": {"reporting bias": DomainJudgement("reporting bias", "some concerns", "suspected", False)},
            "A:B": {"indirectness": DomainJudgement("indirectness", "major concerns", "other population", False)}}
    rows = by_comp(cinema(res, dec, overrides=over))
    assert rows["A:C"]["reporting bias"].rating == "some concerns" and rows["A:C"]["confidence"] == "Moderate"
    assert rows["A:B"]["indirectness"].rating == "major concerns" and not rows["A:B"]["indirectness"].suggested
    assert rows["A:B"]["confidence"] == "Very low"  # High - 1 - 2, floor at Very low
    with pytest.raises(InputError, match="not in the network"):
        cinema(res, dec, overrides={"A:Z": {}})
    with pytest.raises(InputError, match="unknown domain"):
        cinema(res, dec, overrides={"A:B": {"bias": over["A:B"]["indirectness"]}})
