"""GRADE evidence profile and Summary of Findings table for one outcome.

Certainty starts high for randomized trials and low for observational studies, is rated down
one or two levels in each of five domains (risk of bias, inconsistency, indirectness,
imprecision, publication bias) and, for observational evidence, may be rated up (large effect,
dose-response, plausible confounding that would reduce the effect). Imprecision and inconsistency
are SUGGESTED from the numbers with the rule shown; every other judgement is the reviewer's, taken
from the spec. Suggestions support and do not replace the reviewers' judgement.

Rules and their sources
-----------------------
* Starting level, levels, and rating up by one or two for a large (RR > 2 or < 0.5) or very
  large (RR > 5 or < 0.2) effect: GRADE Handbook (Schünemann et al. 2013), sections 5 and 5.3.1;
  Guyatt GH et al. GRADE guidelines 9: rating up the quality of evidence. J Clin Epidemiol
  2011;64:1311-16.
* Imprecision: GRADE Handbook 5.2.6; Guyatt GH et al. GRADE guidelines 6: rating the quality of
  evidence - imprecision. J Clin Epidemiol 2011;64:1283-93. Rate down when the 95% CI includes
  no effect and appreciable benefit or harm, by default RR 0.75 / 1.25 (a 25% relative risk
  reduction or increase, the guideline's rule of thumb); rate down twice when it includes both;
  rate down when the total number of participants is below the optimal information size (OIS),
  the size of a single adequately powered trial (alpha 0.05 two-sided, power 0.80, RRR 25%).
* Inconsistency: GRADE Handbook 5.2.3; Guyatt GH et al. GRADE guidelines 7: inconsistency.
  J Clin Epidemiol 2011;64:1294-1302, which use the I^2 bands of the Cochrane Handbook
  (section 10.10.2): 0-40% might not be important, 30-60% moderate, 50-90% substantial,
  75-100% considerable. GRADE gives no single cut-off ("somewhat arbitrary", GRADE guidelines 7;
  GRADE guidance 36, Guyatt et al. J Clin Epidemiol 2023, warns against relying on I^2 alone), so
  Follicle's suggestion is its own reading of those bands, stated in every reason: serious when
  I^2 >= 50% (the "substantial" band and above); the reason also says whether study estimates fall
  on both sides of no effect, which GRADE guidelines 7 names as the case for rating down most.
* Absolute effects per 1,000 from a baseline (control) risk: GRADE Handbook 5.1 and Cochrane
  Handbook 14.1.5; OR to risk via ``p1 = p0 OR / (1 - p0 + p0 OR)`` (Cochrane Handbook 15.4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

Design = Literal["rct", "observational"]
Rating = Literal["not serious", "serious", "very serious"]
LEVELS = {4: "High", 3: "Moderate", 2: "Low", 1: "Very low"}
_DOWN = {"not serious": 0, "serious": 1, "very serious": 2}

RR_APPRECIABLE_BENEFIT = 0.75  # GRADE guidelines 6 (Guyatt 2011), rule of thumb: RRR 25%
RR_APPRECIABLE_HARM = 1.25  # GRADE guidelines 6 (Guyatt 2011), rule of thumb: RRI 25%
I2_SUBSTANTIAL = 50.0  # Cochrane Handbook 10.10.2 bands, used by GRADE guidelines 7


@dataclass(frozen=True)
class DomainRating:
    domain: str
    rating: Rating
    reason: str
    suggested: bool = False  # computed from the numbers (True) or the reviewer's judgement

    @property
    def levels(self) -> int:
        return _DOWN[self.rating]


def risk_from_ratio(p0: float, ratio: float, measure: str) -> float:
    """Intervention-group risk from control risk *p0* and a ratio (RR or OR) or a risk difference."""
    if measure == "RR":
        return p0 * ratio
    if measure in ("OR", "PETO"):
        return p0 * ratio / (1 - p0 + p0 * ratio)
    if measure == "RD":
        return p0 + ratio
    raise ValueError(f"absolute effects need measure RR, OR or RD; got {measure!r}")


def optimal_information_size(
    p0: float, rrr: float = 0.25, alpha: float = 0.05, power: float = 0.80, *, increase: bool = False
) -> int:
    """Total participants for one trial detecting a relative change *rrr* at control risk *p0*.

    Normal-approximation two-proportion sample size (both arms equal), GRADE guidelines 6; a
    reduction by default, an increase (``increase=True``) for outcomes the intervention raises.
    """
    p1 = p0 * (1 + rrr) if increase else p0 * (1 - rrr)
    z = norm.isf(alpha / 2) + norm.isf(1 - power)
    n_arm = z**2 * (p0 * (1 - p0) + p1 * (1 - p1)) / (p0 - p1) ** 2
    return int(2 * np.ceil(n_arm))


def suggest_imprecision(
    rr_low: float,
    rr_high: float,
    total_n: int | None = None,
    ois: int | None = None,
    *,
    benefit: float = RR_APPRECIABLE_BENEFIT,
    harm: float = RR_APPRECIABLE_HARM,
) -> DomainRating:
    """Suggested imprecision rating from the 95% CI of the risk ratio and the OIS (rule in the reason)."""
    crosses_benefit = rr_low < benefit < rr_high
    crosses_harm = rr_low < harm < rr_high
    crosses_null = rr_low < 1 < rr_high
    parts = [f"95% CI of RR {rr_low:.2f} to {rr_high:.2f}"]
    ci_levels = 0
    if crosses_null and crosses_benefit and crosses_harm:
        ci_levels = 2
        parts.append(f"includes no effect and both appreciable benefit (RR {benefit}) and harm (RR {harm})")
    elif crosses_null and (crosses_benefit or crosses_harm):
        ci_levels = 1
        parts.append(f"includes no effect and appreciable {'benefit' if crosses_benefit else 'harm'} "
                     f"(RR {benefit if crosses_benefit else harm})")
    else:
        parts.append(f"does not include both no effect and RR {benefit} or {harm}")
    ois_levels = 0
    if total_n is not None and ois is not None:
        if total_n < ois:
            ois_levels = 1
            parts.append(f"{total_n} participants < OIS {ois}")
        else:
            parts.append(f"{total_n} participants >= OIS {ois}")
    levels = max(ci_levels, ois_levels)
    rating: Rating = ("not serious", "serious", "very serious")[levels]  # type: ignore[assignment]
    rule = "rule: GRADE guidelines 6 (Guyatt 2011) - CI vs RR 0.75/1.25 thresholds and OIS (alpha 0.05, power 0.8, relative change 25%)"
    return DomainRating("imprecision", rating, "; ".join(parts) + f" [{rule}]", suggested=True)


def suggest_inconsistency(
    i2: float, q_p: float, k: int, study_effects: list[float] | None = None, null: float = 0.0
) -> DomainRating:
    """Suggested inconsistency rating from I^2 (Cochrane Handbook 10.10.2 bands).

    *study_effects* (analysis scale, e.g. log OR) with *null* (0 for logs and differences) let the
    reason say whether estimates lie on both sides of no effect.
    """
    if k < 2:
        return DomainRating("inconsistency", "not serious", "single study: inconsistency not assessable", True)
    band = ("might not be important" if i2 < 30 else "moderate" if i2 < 50 else "substantial" if i2 < 75
            else "considerable")
    rating: Rating = "serious" if i2 >= I2_SUBSTANTIAL else "not serious"
    direction = ""
    if study_effects:
        above = sum(e > null for e in study_effects)
        below = sum(e < null for e in study_effects)
        direction = ("; study estimates on both sides of no effect" if above and below
                     else "; all study estimates on the same side of no effect")
    reason = (f"I\u00b2 = {i2:.0f}% ({band}), Q p = {q_p:.3g}{direction} "
              f"[rule: serious when I\u00b2 >= {I2_SUBSTANTIAL:.0f}% (Follicle's reading of the Cochrane Handbook "
              f"10.10.2 bands used by GRADE guidelines 7; reviewers judge)]")
    return DomainRating("inconsistency", rating, reason, suggested=True)


@dataclass(frozen=True)
class EvidenceProfile:
    outcome: str
    design: Design
    k: int
    participants: int | None
    domains: list[DomainRating]
    upgrades: dict[str, int]
    certainty_score: int
    certainty: str
    measure: str
    effect: float
    effect_ci: tuple[float, float]
    baseline_risk: float | None = None
    absolute: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def sof_row(self) -> dict[str, object]:
        """One row of a Summary of Findings table."""
        row: dict[str, object] = {
            "outcome": self.outcome,
            "participants (studies)": f"{self.participants if self.participants is not None else 'NA'} ({self.k})",
            "relative effect (95% CI)": f"{self.measure} {self.effect:.2f} ({self.effect_ci[0]:.2f} to {self.effect_ci[1]:.2f})",
            "certainty": f"{self.certainty}" + "".join(
                f"; {d.domain} -{d.levels}" for d in self.domains if d.levels
            ) + "".join(f"; {k} +{v}" for k, v in self.upgrades.items() if v),
        }
        if self.absolute:
            a = self.absolute
            row["risk with control (per 1,000)"] = f"{a['control_per_1000']:.0f}"
            row["risk with intervention (per 1,000)"] = (
                f"{a['intervention_per_1000']:.0f} ({a['intervention_low']:.0f} to {a['intervention_high']:.0f})"
            )
            diff = a["difference_per_1000"]
            row["difference (per 1,000)"] = (
                f"{abs(diff):.0f} {'more' if diff >= 0 else 'fewer'} "
                f"({_signed(a['difference_low'])} to {_signed(a['difference_high'])})"
            )
        return row


def _signed(x: float) -> str:
    return f"{abs(x):.0f} {'more' if x >= 0 else 'fewer'}"


def evidence_profile(
    *,
    outcome: str,
    design: Design,
    measure: str,
    effect: float,
    effect_ci: tuple[float, float],
    k: int,
    i2: float,
    q_p: float,
    participants: int | None = None,
    baseline_risk: float | None = None,
    risk_of_bias: DomainRating | None = None,
    indirectness: DomainRating | None = None,
    publication_bias: DomainRating | None = None,
    inconsistency: DomainRating | None = None,
    imprecision: DomainRating | None = None,
    upgrades: dict[str, int] | None = None,
    study_effects: list[float] | None = None,
) -> EvidenceProfile:
    """Build the GRADE evidence profile of one outcome (effect and CI on the ratio scale for OR/RR).

    Reviewer judgements not given are recorded as "not serious" with the reason "not assessed
    (no judgement in the spec)", so a missing judgement is visible, never silent.

    Parameters
    ----------
    outcome : str
        Name of the outcome.
    design : {"rct", "observational"}
        Starting certainty: high for randomised trials, low for observational studies.
    measure : str
        Effect measure (OR, RR, PETO, RD, MD, SMD, ...).
    effect, effect_ci : float, (float, float)
        Pooled effect and its CI (ratio scale for ratios).
    k, i2, q_p : int, float, float
        Number of studies, I^2 (percent) and the p-value of Q (inconsistency).
    participants : int, optional
        Total participants (imprecision: optimal information size).
    baseline_risk : float, optional
        Control risk for the absolute effects per 1,000.
    risk_of_bias, indirectness, publication_bias, inconsistency, imprecision : optional
        Reviewer judgements overriding the automatic ones.
    upgrades : dict, optional
        Reasons to rate up (observational evidence).
    study_effects : list of float, optional
        Per-study effects (used for the inconsistency judgement).

    Returns
    -------
    EvidenceProfile
        Certainty (high, moderate, low, very low) with the reason for each domain.

    References
    ----------
    Guyatt GH et al. GRADE guidelines (series). J Clin Epidemiol 2011;64; the source of each
    domain's rule is named in the module docstring.
    """
    notes: list[str] = []
    p0 = baseline_risk
    absolute: dict[str, float] = {}
    if p0 is not None and measure in ("RR", "OR", "PETO", "RD"):
        r, lo, hi = (risk_from_ratio(p0, v, measure) for v in (effect, *effect_ci))
        absolute = {
            "control_per_1000": 1000 * p0,
            "intervention_per_1000": 1000 * r,
            "intervention_low": 1000 * lo,
            "intervention_high": 1000 * hi,
            "difference_per_1000": 1000 * (r - p0),
            "difference_low": 1000 * (lo - p0),
            "difference_high": 1000 * (hi - p0),
        }
    if imprecision is None:
        if measure in ("RR", "OR", "PETO"):
            if measure == "RR":
                rr_lo, rr_hi = effect_ci
            elif p0 is not None:
                rr_lo, rr_hi = (risk_from_ratio(p0, v, measure) / p0 for v in effect_ci)
                notes.append(f"imprecision judged on the RR implied by the OR at baseline risk {p0:g}")
            else:
                rr_lo, rr_hi = effect_ci
                notes.append("no baseline risk: OR thresholds used as if RR")
            ois = optimal_information_size(p0, increase=effect > 1) if p0 is not None else None
            imprecision = suggest_imprecision(rr_lo, rr_hi, participants, ois)
        else:
            imprecision = DomainRating("imprecision", "not serious",
                                       "not assessed: no rule for this measure (give a judgement in the spec)")
    if inconsistency is None:
        inconsistency = suggest_inconsistency(i2, q_p, k, study_effects)
    missing = "not assessed (no judgement in the spec)"
    domains = [
        risk_of_bias or DomainRating("risk of bias", "not serious", missing),
        inconsistency,
        indirectness or DomainRating("indirectness", "not serious", missing),
        imprecision,
        publication_bias or DomainRating("publication bias", "not serious", missing),
    ]
    ups = {k_: int(v) for k_, v in (upgrades or {}).items()}
    if any(v < 0 or v > 2 for v in ups.values()):
        raise ValueError(f"rating-up levels must be 0, 1 or 2; got {ups}")
    if design == "rct" and any(ups.values()):
        notes.append("rating up is meant for observational evidence (GRADE guidelines 9)")
    start = 4 if design == "rct" else 2
    score = start - sum(d.levels for d in domains) + sum(ups.values())
    score = int(min(4, max(1, score)))
    if measure in ("RR", "OR") and design == "observational":
        big = max(effect, 1 / effect) if effect > 0 else 0
        if big > 5:
            notes.append("very large effect (RR > 5 or < 0.2): rating up two levels may be considered (GRADE guidelines 9)")
        elif big > 2:
            notes.append("large effect (RR > 2 or < 0.5): rating up one level may be considered (GRADE guidelines 9)")
    return EvidenceProfile(
        outcome=outcome, design=design, k=k, participants=participants, domains=domains, upgrades=ups,
        certainty_score=score, certainty=LEVELS[score], measure=measure, effect=effect, effect_ci=effect_ci,
        baseline_risk=p0, absolute=absolute, notes=notes,
    )


def summary_of_findings(profiles: list[EvidenceProfile]) -> pd.DataFrame:
    """Summary of Findings table: one row per outcome (GRADE Handbook 5.1; Cochrane Handbook 14.1)."""
    return pd.DataFrame([p.sof_row() for p in profiles])


def profile_table(profile: EvidenceProfile) -> pd.DataFrame:
    """The evidence profile of one outcome: each domain, its rating, who made it and why."""
    rows = [
        {"domain": d.domain, "rating": d.rating, "levels": -d.levels,
         "source": "suggested from the numbers" if d.suggested else "reviewer judgement (spec)", "reason": d.reason}
        for d in profile.domains
    ]
    rows += [{"domain": f"rating up: {k}", "rating": f"+{v}", "levels": v, "source": "reviewer judgement (spec)",
              "reason": ""} for k, v in profile.upgrades.items()]
    start = "High (randomized trials)" if profile.design == "rct" else "Low (observational studies)"
    rows.insert(0, {"domain": "starting certainty", "rating": start, "levels": 0, "source": "study design",
                    "reason": "GRADE Handbook 5"})
    rows.append({"domain": "certainty", "rating": profile.certainty, "levels": profile.certainty_score,
                 "source": "", "reason": "; ".join(profile.notes)})
    return pd.DataFrame(rows)
