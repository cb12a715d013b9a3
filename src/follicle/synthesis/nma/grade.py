"""Confidence in network meta-analysis results, CINeMA's six domains, suggested by rules and editable.

Each relative effect (pair of treatments) is judged in six domains with CINeMA's levels "no
concerns", "some concerns", "major concerns"; confidence starts High (randomised trials) and goes
down one level for some concerns and two for major concerns (floor Very low). Rules and sources:

* within-study bias and indirectness: the reviewer's study-level judgements (low / some concerns /
  high) are combined with each study's contribution to the estimate (random-walk contribution
  matrix, :mod:`follicle.synthesis.nma.contrib`) by CINeMA's "majority" (the level with the largest
  contribution), "average" (contribution-weighted mean of 1/2/3, rounded to the nearest level:
  Follicle's reading of CINeMA's rule) or "highest" (worst level with any contribution) rule;
* reporting bias: the reviewer's judgement (CINeMA offers no rule);
* imprecision: the CI against the clinically important effect zone (-delta, +delta) on the analysis
  scale: crossing both limits major concerns, one limit some concerns, none no concerns;
* heterogeneity: the number of zone limits crossed by the CI and by the prediction interval
  (CINeMA's table: PI crosses as many limits as the CI: no concerns; one more: some concerns; two
  more: major concerns);
* incoherence: direct-only estimates no concerns; indirect-only estimates from the p-value of the
  design-by-treatment interaction (random-effects between-designs Q): > 0.10 no concerns,
  0.01-0.10 some, < 0.01 major; mixed estimates from how many of the three areas (below, inside,
  above the zone) the direct and the indirect CIs share: 3 no concerns, 2 some, 0-1 major; a
  back-calculated indirect estimate that only comes from the multi-arm studies comparing the pair
  (no other route joins the two treatments) is not independent evidence: no concerns (Follicle's
  reading; incoherence is disagreement between designs).

Without a clinically important effect, imprecision, heterogeneity and mixed-evidence incoherence are
"not assessed" (no threshold is invented). Suggestions support and do not replace the reviewers'
judgement; every rating names its rule, and any may be overridden with a reason.

References
----------
Nikolakopoulou A, Higgins JPT, Papakonstantinou T et al. (2020). CINeMA: An approach for assessing
confidence in the results of a network meta-analysis. PLoS Med 17:e1003082.
Papakonstantinou T, Nikolakopoulou A, Higgins JPT, Egger M, Salanti G (2020). CINeMA: Software for
semiautomated assessment of the confidence in the results of network meta-analysis. Campbell Syst
Rev 16:e1080. CINeMA documentation (github.com/esm-ispm-unibe-ch/cinema, docs/documentation.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from follicle.errors import InputError
from follicle.synthesis.grade import LEVELS
from follicle.synthesis.nma._graph import components
from follicle.synthesis.nma.contrib import study_contributions
from follicle.synthesis.nma.decomp import Decomposition
from follicle.synthesis.nma.fit import Model, NetworkMetaAnalysis
from follicle.synthesis.nma.split import netsplit

Concern = Literal["no concerns", "some concerns", "major concerns"]
StudyLevel = Literal["low", "some concerns", "high"]
Rule = Literal["majority", "average", "highest"]
DOMAINS = ("within-study bias", "reporting bias", "indirectness", "imprecision", "heterogeneity", "incoherence")
_DOWN = {"no concerns": 0, "some concerns": 1, "major concerns": 2}
_STUDY = {"low": 1, "some concerns": 2, "high": 3}
_FROM_SCORE = {1: "no concerns", 2: "some concerns", 3: "major concerns"}
DISCLAIMER = "CINeMA-style suggestions support and do not replace the reviewers' judgement."


@dataclass(frozen=True)
class DomainJudgement:
    domain: str
    rating: Concern | None  # None: not assessed (counts as no concerns, and says so)
    reason: str
    suggested: bool = True

    @property
    def levels(self) -> int:
        return _DOWN[self.rating] if self.rating else 0


@dataclass(frozen=True)
class ComparisonConfidence:
    comparison: str
    domains: list[DomainJudgement]
    confidence: str = field(init=False)

    def __post_init__(self) -> None:
        score = max(1, 4 - sum(d.levels for d in self.domains))
        object.__setattr__(self, "confidence", LEVELS[score])

    def to_dict(self) -> dict[str, Any]:
        return {"comparison": self.comparison, "confidence": self.confidence,
                "domains": [{"domain": d.domain, "rating": d.rating or "not assessed", "reason": d.reason,
                             "source": "suggested by rule" if d.suggested else "reviewer judgement"}
                            for d in self.domains]}


def _study_rule(contrib: pd.Series, levels: dict[str, StudyLevel], rule: Rule, what: str) -> DomainJudgement:
    missing = [s for s in contrib.index if contrib[s] > 0 and s not in levels]
    domain = "within-study bias" if what == "risk of bias" else "indirectness"
    if missing:
        return DomainJudgement(domain, None, f"not assessed: no {what} judgement for {', '.join(missing)}")
    share = {lv: float(sum(c for s, c in contrib.items() if levels.get(s) == lv)) for lv in _STUDY}
    if rule == "highest":
        score = max(_STUDY[levels[s]] for s in contrib.index if contrib[s] > 1e-12)
    elif rule == "majority":
        score = _STUDY[max(share, key=lambda lv: (share[lv], _STUDY[lv]))]
    else:
        mean = sum(_STUDY[lv] * c for lv, c in share.items()) / max(sum(share.values()), 1e-12)
        score = int(np.clip(np.floor(mean + 0.5), 1, 3))
    parts = ", ".join(f"{lv} {100 * c:.0f}%" for lv, c in share.items() if c > 0.0005)
    return DomainJudgement(domain, _FROM_SCORE[score],  # type: ignore[arg-type]
                           f"contribution of studies by {what}: {parts} [rule: CINeMA '{rule}']")


def _crossings(low: float, high: float, delta: float) -> int:
    return int(low < -delta < high) + int(low < delta < high)


def _areas(low: float, high: float, delta: float) -> set[str]:
    out = set()
    if low < -delta:
        out.add("below")
    if high > -delta and low < delta:
        out.add("inside")
    if high > delta:
        out.add("above")
    return out


def cinema(
    res: NetworkMetaAnalysis,
    decomposition: Decomposition,
    *,
    model: Model = "random",
    clinically_important: float | None = None,
    risk_of_bias: dict[str, StudyLevel] | None = None,
    indirectness: dict[str, StudyLevel] | None = None,
    reporting_bias: DomainJudgement | None = None,
    rule: Rule = "majority",
    overrides: dict[str, dict[str, DomainJudgement]] | None = None,
) -> list[ComparisonConfidence]:
    """Suggested (and overridden) CINeMA judgements for every pair of treatments.

    *clinically_important* is delta on the analysis scale (log ratio for OR/RR, > 0). Comparisons are
    named as in :func:`follicle.synthesis.nma.netsplit` ("A:B", reference second); *overrides* maps a
    comparison (or "*" for every comparison) to domain judgements that replace the suggestions.
    """
    if rule not in ("majority", "average", "highest"):
        raise InputError(f"rule must be majority, average or highest; got {rule!r}")
    if clinically_important is not None and not clinically_important > 0:
        raise InputError(f"the clinically important effect must be > 0 on the analysis scale; got {clinically_important}")
    split = netsplit(res, model)
    contrib = study_contributions(res, model)
    est = res.model(model)
    delta = clinically_important
    p_inc = decomposition.q_between_random["p"]
    overrides = overrides or {}
    unknown = set(overrides) - set(split["comparison"]) - {"*"}
    if unknown:
        raise InputError(f"GRADE overrides name comparisons not in the network: {', '.join(sorted(unknown))} "
                         f"(comparisons: {', '.join(split['comparison'])})")
    out = []
    for row in split.itertuples():
        key = f"{min(row.treat1, row.treat2)}:{max(row.treat1, row.treat2)}"
        judg: dict[str, DomainJudgement] = {}
        judg["within-study bias"] = (
            _study_rule(contrib.loc[key], risk_of_bias, rule, "risk of bias") if risk_of_bias
            else DomainJudgement("within-study bias", None, "not assessed: no study-level risk-of-bias judgements in the spec"))
        judg["reporting bias"] = reporting_bias or DomainJudgement(
            "reporting bias", None, "not assessed: no reporting-bias judgement in the spec", suggested=False)
        judg["indirectness"] = (
            _study_rule(contrib.loc[key], indirectness, rule, "indirectness") if indirectness
            else DomainJudgement("indirectness", None, "not assessed: no study-level indirectness judgements in the spec"))
        if delta is None:
            for dom in ("imprecision", "heterogeneity"):
                judg[dom] = DomainJudgement(dom, None, "not assessed: no clinically important effect in the spec")
        else:
            c = _crossings(row.network_low, row.network_high, delta)
            judg["imprecision"] = DomainJudgement(
                "imprecision", ("no concerns", "some concerns", "major concerns")[c],  # type: ignore[arg-type]
                f"{100 * res.level:.0f}% CI {row.network_low:.3g} to {row.network_high:.3g} crosses {c} of the limits "
                f"+-{delta:.3g} of the clinically important zone [rule: CINeMA imprecision]")
            a, b = est.index(row.treat1), est.index(row.treat2)
            if res.random.predict_low is None:
                judg["heterogeneity"] = DomainJudgement(
                    "heterogeneity", None, "not assessed: no prediction interval (fewer than 2 degrees of freedom)")
            else:
                pc = _crossings(res.random.predict_low[a, b], res.random.predict_high[a, b], delta)
                cc = _crossings(res.random.ci_low[a, b], res.random.ci_high[a, b], delta)
                extra = max(0, pc - cc)
                judg["heterogeneity"] = DomainJudgement(
                    "heterogeneity", ("no concerns", "some concerns", "major concerns")[extra],  # type: ignore[arg-type]
                    f"prediction interval {res.random.predict_low[a, b]:.3g} to {res.random.predict_high[a, b]:.3g} "
                    f"crosses {pc}, CI {cc} of the limits +-{delta:.3g}; tau^2 = {res.tau2:.3g} "
                    f"[rule: CINeMA heterogeneity table]")
        if np.isfinite(row.direct) and np.isfinite(row.indirect) and not _independent_indirect(res, row.treat1, row.treat2):
            judg["incoherence"] = DomainJudgement(
                "incoherence", "no concerns", "the back-calculated indirect estimate comes only from the multi-arm studies "
                "that compare the pair directly (no other route joins the two treatments), so there is no independent "
                "evidence to disagree with [rule: Follicle's reading of CINeMA; incoherence is between designs]")
        else:
            judg["incoherence"] = _incoherence(row, delta, p_inc)
        for dom, j in {**overrides.get("*", {}), **overrides.get(row.comparison, {})}.items():
            if dom not in DOMAINS:
                raise InputError(f"GRADE override for {row.comparison}: unknown domain {dom!r} (domains: {', '.join(DOMAINS)})")
            judg[dom] = j
        out.append(ComparisonConfidence(row.comparison, [judg[d] for d in DOMAINS]))
    return out


def _independent_indirect(res: NetworkMetaAnalysis, a: str, b: str) -> bool:
    """Do *a* and *b* stay connected without the studies that include both (netmeta's SIDDE idea)?"""
    net = res.network
    both = {s for s in net.studies if {a, b} <= set(net.treat1[net.study == s]) | set(net.treat2[net.study == s])}
    keep = ~np.isin(net.study, list(both))
    edges = list(zip(net.treat1[keep], net.treat2[keep]))
    nodes = sorted(set(res.treatments))
    return any(a in c and b in c for c in components(edges, nodes))


def _incoherence(row: Any, delta: float | None, p_inc: float) -> DomainJudgement:
    has_direct, has_indirect = np.isfinite(row.direct), np.isfinite(row.indirect) and row.k > 0
    if has_direct and not np.isfinite(row.indirect):
        return DomainJudgement("incoherence", "no concerns",
                               f"no separate indirect estimate (proportion of direct evidence {row.prop_direct:.2f}) "
                               f"[rule: CINeMA incoherence, direct evidence only]")
    if not has_direct:
        if not np.isfinite(p_inc):
            return DomainJudgement("incoherence", None,
                                   "only indirect evidence and no design-by-treatment test (no degrees of freedom)")
        level = "no concerns" if p_inc > 0.10 else "some concerns" if p_inc >= 0.01 else "major concerns"
        return DomainJudgement("incoherence", level,  # type: ignore[arg-type]
                               f"only indirect evidence; design-by-treatment interaction (random effects) p = "
                               f"{p_inc:.3g} [rule: CINeMA, > 0.10 / 0.01-0.10 / < 0.01]")
    side = f"SIDE p = {row.p:.3g}" if np.isfinite(row.p) else "SIDE not available"
    if delta is None or not has_indirect:
        return DomainJudgement("incoherence", None, f"not assessed: no clinically important effect in the spec ({side})")
    shared = _areas(row.direct_low, row.direct_high, delta) & _areas(row.indirect_low, row.indirect_high, delta)
    level = {3: "no concerns", 2: "some concerns"}.get(len(shared), "major concerns")
    return DomainJudgement("incoherence", level,  # type: ignore[arg-type]
                           f"direct and indirect CIs share {len(shared)} of 3 areas around the zone +-{delta:.3g}; "
                           f"{side} [rule: CINeMA incoherence]")


def confidence_table(rows: list[ComparisonConfidence]) -> pd.DataFrame:
    """One row per comparison: each domain's rating and the resulting confidence."""
    return pd.DataFrame([{"comparison": r.comparison, **{d.domain: d.rating or "not assessed" for d in r.domains},
                          "confidence": r.confidence} for r in rows])
