"""Survival analysis: Kaplan-Meier, log-rank, Cox regression, PH test, risks, rates, follow-up.

Pure functions and fitted objects over arrays and data frames (no I/O). Numbers agree with R's
survival package (``survfit``, ``survdiff``, ``coxph``, ``cox.zph``) to 1e-6 relative; see
tests/survival/test_survival_vs_r.py.
"""

from follicle.survival.compare import GroupComparison, compare_survival
from follicle.survival.cox import CoxPH, CoxResult, fit_outcome_model
from follicle.survival.followup import FollowUp, followup_by_group, followup_summary
from follicle.survival.kaplan_meier import (
    KaplanMeierResult,
    kaplan_meier,
    kaplan_meier_by_group,
    numbers_at_risk,
)
from follicle.survival.logrank import LogRankResult, logrank_test
from follicle.survival.rates import (
    IncidenceRate,
    RateRatio,
    incidence_rate,
    incidence_rates,
    poisson_exact_ci,
    rate_ratio,
)
from follicle.survival.risks import ArmRisk, RiskComparison, risk_comparison
from follicle.survival.zph import ZphResult, cox_zph

__all__ = [
    "ArmRisk",
    "CoxPH",
    "CoxResult",
    "FollowUp",
    "GroupComparison",
    "IncidenceRate",
    "KaplanMeierResult",
    "LogRankResult",
    "RateRatio",
    "RiskComparison",
    "ZphResult",
    "compare_survival",
    "cox_zph",
    "fit_outcome_model",
    "followup_by_group",
    "followup_summary",
    "incidence_rate",
    "incidence_rates",
    "kaplan_meier",
    "kaplan_meier_by_group",
    "logrank_test",
    "numbers_at_risk",
    "poisson_exact_ci",
    "rate_ratio",
    "risk_comparison",
]
