"""Analysis settings of a study: one model per statistical step.

Field names are exactly the keyword arguments of the step functions (as OHDSI CohortMethod's
``createMatchOnPsArgs`` mirrors ``matchOnPs``), so a step is called as
``match(ps, treatment, **settings.matching.model_dump())``.

References
----------
Austin PC (2011). Optimal caliper widths for propensity-score matching when estimating
differences in means and differences in proportions in observational studies.
Pharm Stat 10(2):150-161 (caliper 0.2 of the SD of the logit; 0.1 used by Levine et al.).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PropensitySettings(_Settings):
    """Propensity model: logistic regression, optionally penalised with cross-validated strength."""

    penalty: Literal["none", "l1", "l2"] = "none"
    cv_folds: int = Field(5, ge=2)
    max_iter: int = Field(1000, ge=1)


class MatchingSettings(_Settings):
    """Nearest-neighbour matching on the propensity score within a caliper."""

    caliper: float = Field(0.1, gt=0)
    caliper_scale: Literal["std_logit", "logit", "ps"] = "std_logit"
    ratio: int = Field(1, ge=1)
    variable_ratio: bool = False
    order: Literal["random", "closest"] = "random"
    seed: int = 0


class OutcomeModelSettings(_Settings):
    """Cox proportional-hazards outcome model."""

    ties: Literal["efron", "breslow"] = "efron"
    robust_se: bool = True
    stratify_by_pair: bool = False


class AnalysisSettings(_Settings):
    """All statistical settings of a study; ``balance_threshold`` is the largest acceptable |SMD|."""

    propensity: PropensitySettings = Field(default_factory=PropensitySettings)
    matching: MatchingSettings = Field(default_factory=MatchingSettings)
    outcome_model: OutcomeModelSettings = Field(default_factory=OutcomeModelSettings)
    balance_threshold: float = Field(0.1, gt=0)
