"""Data preparation (netmeta pairwise semantics, zero cells), network checks and the model's properties.

Expected values come from the formulas of meta's metabin/metacont as netmeta's pairwise() calls them
(source: github.com/guido-s/netmeta R/pairwise.R and guido-s/meta R/metabin.R), written out here by
hand, and from algebraic properties of the model (Rücker 2012; Rücker & Schwarzer 2015).
"""

import numpy as np
import pandas as pd
import pytest

from follicle.errors import InputError
from follicle.synthesis.nma import (
    contrasts_from_frame,
    contribution_matrix,
    decomp_design,
    league_table,
    netmeta,
    netsplit,
    pairwise,
    pscores,
    rankogram,
)
from nma_networks import binary_network, continuous_network, dong2013, senn2013


def arms(rows):
    return pd.DataFrame(rows, columns=["study", "treatment", "events", "n"])


def lor(a, n1, c, n2, inc):
    return np.log((a + inc) * (n2 - c + inc) / ((n1 - a + inc) * (c + inc)))


# ---- pairwise(): zero cells ---------------------------------------------------------------------------

def test_study_with_a_zero_cell_gets_the_increment_in_every_comparison():
    d = arms([("S", "A", 0, 50), ("S", "B", 5, 50), ("S", "C", 10, 50), ("T", "A", 3, 40), ("T", "B", 6, 40)])
    c = pairwise(d, "OR")
    f = c.frame.set_index(["study", "treat1", "treat2"])
    # B vs C has no zero cell itself, but its study does: netmeta adds 0.5 to all of the study's tables
    assert f.loc[("S", "B", "C"), "TE"] == pytest.approx(lor(5, 50, 10, 50, 0.5))
    assert f.loc[("S", "A", "B"), "TE"] == pytest.approx(lor(0, 50, 5, 50, 0.5))
    assert f.loc[("S", "A", "B"), "seTE"] == pytest.approx(np.sqrt(1 / 0.5 + 1 / 50.5 + 1 / 5.5 + 1 / 45.5))
    assert f.loc[("T", "A", "B"), "TE"] == pytest.approx(lor(3, 40, 6, 40, 0.0))  # no zero cell: no increment
    assert any("increment 0.5" in n and "S" in n for n in c.notes)


def test_allincr_and_addincr():
    d = arms([("S", "A", 0, 50), ("S", "B", 5, 50), ("T", "A", 3, 40), ("T", "B", 6, 40)])
    f = pairwise(d, "OR", allincr=True).frame.set_index("study")
    assert f.loc["T", "TE"] == pytest.approx(lor(3, 40, 6, 40, 0.5))
    f = pairwise(d, "OR", addincr=True, incr=0.25).frame.set_index("study")
    assert f.loc["T", "TE"] == pytest.approx(lor(3, 40, 6, 40, 0.25))
    assert f.loc["S", "TE"] == pytest.approx(lor(0, 50, 5, 50, 0.25))


def test_rr_and_rd_formulas_with_increment():
    d = arms([("S", "A", 0, 40), ("S", "B", 4, 60)])
    rr = pairwise(d, "RR").frame.iloc[0]
    assert rr["TE"] == pytest.approx(np.log((0.5 / 40.5) / (4.5 / 60.5)))  # meta: incr added to events and to n
    assert rr["seTE"] == pytest.approx(np.sqrt(1 / 0.5 - 1 / 40.5 + 1 / 4.5 - 1 / 60.5))
    rd = pairwise(d, "RD").frame.iloc[0]
    assert rd["TE"] == pytest.approx(0 / 40 - 4 / 60)  # raw proportions
    assert rd["seTE"] == pytest.approx(np.sqrt(0.5 * 40.5 / 41**3 + 4.5 * 56.5 / 61**3))


def test_two_arm_double_zero_is_dropped_with_a_note_but_kept_for_rd():
    d = arms([("Z", "A", 0, 30), ("Z", "B", 0, 30), ("S", "A", 3, 40), ("S", "B", 6, 40)])
    c = pairwise(d, "OR")
    assert c.studies == ["S"] and any("Z: A vs B (no events in both arms)" in n for n in c.notes)
    assert pairwise(d, "RD").studies == ["Z", "S"]
    kept = pairwise(d, "OR", allstudies=True).frame.set_index("study")
    assert kept.loc["Z", "TE"] == pytest.approx(0.0) and kept.loc["Z", "seTE"] == pytest.approx(np.sqrt(2 / 0.5 + 2 / 30.5))


def test_multi_arm_double_zero_is_refused_by_name_as_netmeta_does():
    with pytest.raises(InputError) as err:
        pairwise(dong2013(), "OR")
    text = err.value.render()
    for study in ("33", "41"):
        assert f"{study}: " in text
    assert "allstudies" in text
    res = netmeta(pairwise(dong2013(), "OR", allstudies=True), reference="Placebo")  # then it runs
    assert len(res.treatments) == 6 and np.all(np.isfinite(res.random.te))


def test_single_arm_studies_and_bad_rows_are_reported():
    d = arms([("S", "A", 3, 40), ("S", "B", 6, 40), ("L", "A", 2, 20)])
    assert any("single arm" in n and "L" in n for n in pairwise(d, "OR").notes)
    with pytest.raises(InputError) as err:
        pairwise(arms([("S", "A", 50, 40), ("S", "B", 6, 40), ("S", "B", 1, 10)]), "OR")
    text = err.value.render()
    assert "row 2" in text and "twice" in text
    with pytest.raises(InputError, match="missing column"):
        pairwise(pd.DataFrame({"study": ["a"], "treatment": ["x"], "n": [3]}), "OR")


# ---- pairwise(): continuous -----------------------------------------------------------------------------

def test_smd_is_consistent_in_multi_arm_studies_with_crippa_orsini_variance():
    d = pd.DataFrame({"study": ["S"] * 3, "treatment": ["A", "B", "C"], "mean": [1.0, 2.0, 4.0],
                      "sd": [1.0, 2.0, 3.0], "n": [20, 30, 50]})
    f = pairwise(d, "SMD").frame.set_index(["treat1", "treat2"])
    sp = np.sqrt((19 * 1 + 29 * 4 + 49 * 9) / (19 + 29 + 49))
    assert f.loc[("A", "C"), "TE"] == pytest.approx(-3 / sp)
    assert f.loc[("A", "B"), "TE"] + f.loc[("B", "C"), "TE"] == pytest.approx(f.loc[("A", "C"), "TE"])
    d_ac = -3 / sp
    assert f.loc[("A", "C"), "seTE"] == pytest.approx(np.sqrt(1 / 20 + 1 / 50 + d_ac**2 / 200))
    two = pairwise(d.iloc[:2], "SMD").frame.iloc[0]
    s2 = np.sqrt((19 * 1 + 29 * 4) / 48)
    assert two["TE"] == pytest.approx(-1 / s2)  # Cohen's d with the two-arm pooled SD


def test_md():
    d = pd.DataFrame({"study": ["S"] * 2, "treatment": ["A", "B"], "mean": [5.0, 3.0], "sd": [2.0, 4.0], "n": [10, 40]})
    f = pairwise(d, "MD").frame.iloc[0]
    assert (f["TE"], f["seTE"]) == pytest.approx((2.0, np.sqrt(4 / 10 + 16 / 40)))


# ---- contrast input and network checks -----------------------------------------------------------------

def contrasts(rows):
    return pd.DataFrame(rows, columns=["study", "treatment1", "treatment2", "estimate", "se"])


def test_incomplete_and_inconsistent_multi_arm_contrasts_are_refused():
    with pytest.raises(InputError) as err:
        netmeta(contrasts_from_frame(contrasts([("S", "A", "B", 1, 0.2), ("S", "A", "C", 2, 0.2)]), "MD"))
    assert "study 'S'" in err.value.render() and "3 comparisons" in err.value.render()
    bad = contrasts([("S", "A", "B", 1, 0.3), ("S", "A", "C", 2, 0.3), ("S", "B", "C", 5, 0.3)])
    with pytest.raises(InputError, match="inconsistent treatment estimates|multi-arm"):
        netmeta(contrasts_from_frame(bad, "MD"))
    with pytest.raises(InputError) as err:
        contrasts_from_frame(contrasts([("S", "A", "B", 1, 0.0)]), "MD")
    assert "row 2: se must be > 0" in err.value.render()


def test_disconnected_network_names_its_subnetworks():
    d = contrasts([("S1", "A", "B", 1, 0.2), ("S2", "C", "D", 1, 0.2), ("S3", "D", "E", 1, 0.2)])
    with pytest.raises(InputError) as err:
        netmeta(contrasts_from_frame(d, "MD"))
    text = err.value.render()
    assert "2 separate sub-networks" in text
    assert "treatments C, D, E (studies: S2, S3)" in text and "treatments A, B (studies: S1)" in text


def test_single_study_network():
    d = arms([("S", "A", 10, 100), ("S", "B", 20, 100), ("S", "C", 30, 100)])
    c = pairwise(d, "OR")
    res = netmeta(c, reference="A")
    assert res.df == 0 and np.isnan(res.tau2) and res.q == 0.0
    assert any("single-study network" in n for n in res.notes)
    np.testing.assert_allclose(res.random.te, res.common.te)
    f = c.frame.set_index(["treat1", "treat2"])
    # the network estimates are the study's own contrasts with their own standard errors
    assert res.common.te[1, 0] == pytest.approx(-f.loc[("A", "B"), "TE"])
    assert res.common.se[1, 0] == pytest.approx(f.loc[("A", "B"), "seTE"])
    assert decomp_design(res).q_decomp["df"].tolist() == [0, 0, 0]


def test_reference_must_be_in_the_network():
    with pytest.raises(InputError, match="reference treatment 'Z'"):
        netmeta(pairwise(binary_network(1), "OR"), reference="Z")


def test_arm_and_contrast_input_agree_and_row_order_does_not_matter():
    a = binary_network(8, n_trt=5, k=12)
    c = pairwise(a, "OR")
    flipped = c.frame.rename(columns={"treat1": "treatment2", "treat2": "treatment1"})
    flipped = flipped.assign(estimate=-flipped["TE"], se=flipped["seTE"]).sample(frac=1, random_state=3)
    r1 = netmeta(c)
    r2 = netmeta(contrasts_from_frame(flipped[["study", "treatment1", "treatment2", "estimate", "se"]], "OR"))
    np.testing.assert_allclose(r1.random.te, r2.random.te, atol=1e-12)
    np.testing.assert_allclose(r1.common.se, r2.common.se, atol=1e-12)
    assert r1.tau2 == pytest.approx(r2.tau2)


def test_tau2_preset_is_used():
    c = pairwise(continuous_network(2), "MD")
    free = netmeta(c)
    fixed = netmeta(c, tau2_preset=0.5)
    assert fixed.tau2 == 0.5 and free.tau2 != 0.5
    assert np.all(fixed.random.se[~np.eye(len(fixed.treatments), dtype=bool)] >
                  free.common.se[~np.eye(len(free.treatments), dtype=bool)])


# ---- ranking, league table, contributions, decomposition, netsplit ------------------------------------

@pytest.fixture(scope="module")
def senn():
    return netmeta(contrasts_from_frame(senn2013(), "MD"), reference="plac")


def test_pscores_sum_and_direction(senn):
    low, high = pscores(senn, "random", "lower"), pscores(senn, "random", "higher")
    assert sum(low.values()) == pytest.approx(len(senn.treatments) / 2)
    assert all(low[t] + high[t] == pytest.approx(1.0) for t in low)


def test_sucra_matches_pscores_within_monte_carlo_error(senn):
    """Rücker & Schwarzer (2015): the P-score is the expectation of SUCRA under the normal model."""
    ro = rankogram(senn, "random", "lower", nsim=20000, seed=1)
    ps = pscores(senn, "random", "lower")
    assert max(abs(ro.loc[t, "sucra"] - ps[t]) for t in ps) < 0.01
    np.testing.assert_allclose(ro.filter(like="rank_").sum(axis=1), 1.0)
    assert ro.equals(rankogram(senn, "random", "lower", nsim=20000, seed=1))  # reproducible


def test_league_table_orientation(senn):
    order = ["plac", "rosi", "metf"]
    lt = league_table(senn, "common", order=order)
    assert [lt.iloc[i, i] for i in range(3)] == order
    i, j = senn.treatments.index("rosi"), senn.treatments.index("plac")
    assert lt.loc["rosi", "plac"].startswith(f"{senn.common.te[i, j]:.2f} ")  # lower: network, row vs column
    assert lt.loc["plac", "rosi"].startswith(f"{senn.common.direct_te[j, i]:.2f} ")  # upper: direct
    assert league_table(senn, "common", order=["sita", "vild"]).loc["sita", "vild"] == "."  # no direct evidence


def test_contribution_matrix_triangle_and_row_sums():
    tri = contrasts([("S1", "A", "B", 0.1, 0.2), ("S2", "A", "C", 0.3, 0.2), ("S3", "B", "C", 0.1, 0.2)])
    cm = contribution_matrix(netmeta(contrasts_from_frame(tri, "MD")), "common")
    # equal weights: A-B gets 2/3 through its own edge and 1/3 through the path A-C-B of length 2
    assert cm.loc["A:B"].to_dict() == pytest.approx({"A:B": 2 / 3, "A:C": 1 / 6, "B:C": 1 / 6})


def test_contribution_rows_sum_to_one_and_bridges_are_direct(senn):
    cm = contribution_matrix(senn, "random")
    np.testing.assert_allclose(cm.sum(axis=1), 1.0, atol=1e-10)
    assert cm.loc["plac:sita", "plac:sita"] == pytest.approx(1.0)  # sitagliptin hangs on one edge


def test_decomposition_adds_up_and_skips_bridge_designs(senn):
    dec = decomp_design(senn)
    q = dec.q_decomp.set_index("source")["q"]
    assert q["whole network"] == pytest.approx(q["within designs"] + q["between designs"])
    single = dec.q_within_design[dec.q_within_design["k"] == 1]
    assert (single["df"] == 0).all() and (single["q"] == 0).all()
    assert "plac:sita" not in set(dec.q_between_detached["design"])  # detaching it splits the network


def test_netsplit_direct_only_and_indirect_only(senn):
    s = netsplit(senn, "random").set_index("comparison")
    assert np.isnan(s.loc["sita:plac", "indirect"]) and s.loc["sita:plac", "prop_direct"] == pytest.approx(1.0)
    row = s.loc["sita:vild"]
    assert row["k"] == 0 and np.isnan(row["direct"]) and row["indirect"] == pytest.approx(row["network"])
    mixed = s.loc["rosi:plac"]
    p = mixed["prop_direct"]
    assert mixed["network"] == pytest.approx(p * mixed["direct"] + (1 - p) * mixed["indirect"])


def test_results_serialise_to_json(senn):
    import json

    out = json.loads(json.dumps(senn.to_dict(), allow_nan=False))
    assert out["reference"] == "plac" and len(out["random"]) == 9 and out["heterogeneity"]["df"] == 18
    mats = json.loads(json.dumps(senn.random.to_dict(), allow_nan=False))
    assert mats["te"][0][0] == 0.0 and mats["direct_te"][0][1] is None  # acar vs benf: no direct evidence
