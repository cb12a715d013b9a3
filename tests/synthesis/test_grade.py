"""GRADE rules (GRADE Handbook 2013; Guyatt et al. GRADE guidelines 6, 7, 9, J Clin Epidemiol 2011)."""

import pytest

from follicle.synthesis.grade import (
    DomainRating,
    evidence_profile,
    optimal_information_size,
    profile_table,
    risk_from_ratio,
    suggest_imprecision,
    suggest_inconsistency,
    summary_of_findings,
)


def profile(**kw):
    base = dict(outcome="o", design="rct", measure="RR", effect=0.6, effect_ci=(0.5, 0.7), k=5, i2=10.0, q_p=0.4,
                participants=5000, baseline_risk=0.2)
    return evidence_profile(**(base | kw))


def test_rct_starts_high_observational_low():
    assert profile().certainty == "High"
    assert profile(design="observational").certainty == "Low"


def test_ratings_down_and_up_and_clamped():
    rob = DomainRating("risk of bias", "serious", "allocation concealment unclear in 3 of 5 trials")
    ind = DomainRating("indirectness", "very serious", "surrogate outcome")
    assert profile(risk_of_bias=rob).certainty == "Moderate"
    assert profile(risk_of_bias=rob, indirectness=ind).certainty == "Very low"  # 4 - 3 = 1
    assert profile(risk_of_bias=rob, indirectness=ind, publication_bias=rob).certainty == "Very low"  # clamped
    obs = profile(design="observational", upgrades={"large_effect": 1})
    assert obs.certainty == "Moderate"
    with pytest.raises(ValueError, match="rating-up"):
        profile(upgrades={"large_effect": 3})


def test_missing_judgements_are_visible():
    p = profile()
    rob = next(d for d in p.domains if d.domain == "risk of bias")
    assert "not assessed" in rob.reason and not rob.suggested
    assert [d.domain for d in p.domains] == ["risk of bias", "inconsistency", "indirectness", "imprecision",
                                             "publication bias"]


@pytest.mark.parametrize(
    "lo, hi, expected",
    [
        (0.50, 0.70, "not serious"),  # excludes no effect
        (0.60, 1.10, "serious"),  # no effect and appreciable benefit (RR 0.75)
        (0.90, 1.40, "serious"),  # no effect and appreciable harm (RR 1.25)
        (0.50, 1.60, "very serious"),  # both
        (0.90, 1.10, "not serious"),  # precise null
    ],
)
def test_imprecision_ci_rule(lo, hi, expected):
    r = suggest_imprecision(lo, hi)
    assert r.rating == expected and r.suggested
    assert "0.75" in r.reason and "GRADE guidelines 6" in r.reason


def test_imprecision_ois_rule():
    ois = optimal_information_size(0.2)
    # two-proportion normal approximation, 0.20 vs 0.15, alpha 0.05, power 0.80:
    # n/arm = (1.959964 + 0.841621)^2 (0.2*0.8 + 0.15*0.85) / 0.05^2 = 902.6 -> 903; total 1806
    assert ois == 1806
    assert suggest_imprecision(0.5, 0.7, total_n=1000, ois=ois).rating == "serious"
    assert suggest_imprecision(0.5, 0.7, total_n=2000, ois=ois).rating == "not serious"
    assert optimal_information_size(0.2, increase=True) > 0


@pytest.mark.parametrize("i2, expected", [(0, "not serious"), (45, "not serious"), (50, "serious"), (90, "serious")])
def test_inconsistency_i2_bands(i2, expected):
    r = suggest_inconsistency(i2, 0.05, 6)
    assert r.rating == expected and "Cochrane Handbook 10.10.2" in r.reason


def test_absolute_effects_per_1000():
    p = profile(effect=0.5, effect_ci=(0.4, 0.6), baseline_risk=0.2)
    a = p.absolute
    assert a["control_per_1000"] == pytest.approx(200)
    assert a["intervention_per_1000"] == pytest.approx(100)
    assert (a["intervention_low"], a["intervention_high"]) == pytest.approx((80, 120))
    assert a["difference_per_1000"] == pytest.approx(-100)
    row = p.sof_row()
    assert row["difference (per 1,000)"].startswith("100 fewer")
    # OR -> risk: p1 = p0 OR / (1 - p0 + p0 OR) (Cochrane Handbook 15.4.4); OR 2.25 at 0.2 -> 0.36
    assert risk_from_ratio(0.2, 2.25, "OR") == pytest.approx(0.36)


def test_large_effect_note_for_observational():
    p = profile(design="observational", effect=0.15, effect_ci=(0.1, 0.25))
    assert any("very large effect" in n for n in p.notes)


def test_tables():
    rob = DomainRating("risk of bias", "serious", "unblinded outcome assessment")
    p = profile(risk_of_bias=rob)
    t = profile_table(p)
    assert t.iloc[0]["rating"].startswith("High") and t.iloc[-1]["rating"] == "Moderate"
    assert "reviewer judgement" in t.set_index("domain").loc["risk of bias", "source"]
    assert "suggested" in t.set_index("domain").loc["imprecision", "source"]
    sof = summary_of_findings([p, profile(outcome="o2")])
    assert list(sof["outcome"]) == ["o", "o2"] and "certainty" in sof.columns


def test_inconsistency_reason_reports_direction():
    both = suggest_inconsistency(60, 0.01, 4, [0.3, -0.2, 0.5, 0.1])
    same = suggest_inconsistency(60, 0.01, 4, [0.3, 0.2, 0.5, 0.1])
    assert "both sides of no effect" in both.reason and "same side" in same.reason
    assert "reviewers judge" in both.reason
