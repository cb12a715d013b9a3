"""Published netmeta results on netmeta's own example data (Senn2013).

Source of every number here: Harrer M, Cuijpers P, Furukawa TA, Ebert DD, "Doing Meta-Analysis in R:
A Hands-on Guide" (2019 online edition), chapter "Network Meta-Analysis", section "Frequentist Network
Meta-Analysis" (book source 10-network_metanalysis.Rmd, github.com/MathiasHarrer/Doing-Meta-Analysis-in-R),
which fits ``netmeta(TE, seTE, treat1, treat2, studlab, data = Senn2013, sm = "MD", comb.fixed = TRUE,
comb.random = FALSE, reference.group = "plac")`` and reports: the data have 28 comparisons and
Willms1999 contributes three (the one multi-arm study); DeFronzo1995 contributes Q = 30.89; I^2 = 81.4%;
the between-designs Q is significant with p = 0.0021; netrank(small.values = "good") puts rosiglitazone
first and placebo last with a P-score of zero; and netsplit shows "a few comparisons" with significant
disagreement of direct and indirect evidence in the fixed-effects model.
"""

import numpy as np
import pytest

from follicle.synthesis.nma import contrasts_from_frame, decomp_design, netmeta, netsplit, pscores
from nma_networks import senn2013


@pytest.fixture(scope="module")
def senn():
    return netmeta(contrasts_from_frame(senn2013(), "MD"), reference="plac")


def test_structure(senn):
    assert senn.network.m == 28
    assert senn.k == 26 and len(senn.treatments) == 10
    counts = {s: int(np.sum(senn.network.study == s)) for s in senn.studies}
    assert [s for s, c in counts.items() if c > 1] == ["Willms1999"] and counts["Willms1999"] == 3


def test_q_contribution_of_defronzo1995(senn):
    q = senn.fit_common.q_contrib[senn.network.study == "DeFronzo1995"]
    assert round(float(q[0]), 2) == 30.89


def test_i2(senn):
    assert round(100 * senn.i2, 1) == 81.4


def test_between_designs_p(senn):
    dec = decomp_design(senn).q_decomp.set_index("source")
    assert round(float(dec.loc["between designs", "p"]), 4) == 0.0021
    assert dec.loc["within designs", "p"] < 0.001  # "also highly significant"


def test_ranking_rosiglitazone_first_placebo_zero(senn):
    ps = pscores(senn, "common", better="lower")  # small HbA1c values are good
    order = sorted(ps, key=lambda t: -ps[t])
    assert order[0] == "rosi" and order[-1] == "plac"
    assert round(ps["plac"], 4) == 0.0


def test_some_comparisons_inconsistent_under_common_effects(senn):
    split = netsplit(senn, "common")
    significant = split[(split["p"] < 0.05)]
    tested = split[split["p"].notna()]
    assert len(significant) >= 2 and len(significant) < len(tested)
