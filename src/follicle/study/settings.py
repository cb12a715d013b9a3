"""Analysis settings of a study: one model per statistical step, and the adjustments to run.

Field names are exactly the keyword arguments of the step functions (as OHDSI CohortMethod's
``createMatchOnPsArgs`` mirrors ``matchOnPs``), so a step is called as
``match(ps, treatment, **adjustment.step_args())``.

A study lists any number of *adjustments*, each named by the researcher, of four kinds (as the
analyses of a CohortMethod ``cmAnalysisList``): ``crude`` (no propensity score), ``matching`` (1:1,
1:k or variable ratio within a caliper), ``stratification`` (strata at propensity-score quantiles,
outcome model stratified by stratum) and ``iptw`` (inverse probability of treatment weights, ATE or
ATT, stabilised, optionally truncated, robust standard errors). Every outcome is estimated under
every adjustment; the *primary* one (``primary``, else the first listed) fills the top-level
fields of results.json. An older spec's single ``matching:`` block becomes one matching adjustment
named ``matching``.

References
----------
Austin PC (2011). Optimal caliper widths for propensity-score matching when estimating
differences in means and differences in proportions in observational studies.
Pharm Stat 10(2):150-161 (caliper 0.2 of the SD of the logit; 0.1 used by Levine et al.).
Rosenbaum PR, Rubin DB (1984). Reducing bias in observational studies using subclassification on
the propensity score. J Am Stat Assoc 79:516-524 (five strata).
Austin PC, Stuart EA (2015). Moving towards best practice when using inverse probability of
treatment weighting (IPTW). Stat Med 34:3661-3679.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

AdjustmentName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


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
    """Cox proportional-hazards outcome model.

    ``robust_se`` clusters the sandwich variance on matched sets (matching adjustments; IPTW is
    always robust, crude and stratified fits use the model-based variance, as CohortMethod does);
    ``stratify_by_pair`` is the default of matching adjustments that do not say.
    """

    ties: Literal["efron", "breslow"] = "efron"
    robust_se: bool = True
    stratify_by_pair: bool = False


class CrudeAdjustment(_Settings):
    """No adjustment: everyone in the comparison, a Cox model of treatment alone."""

    kind: Literal["crude"]
    name: AdjustmentName

    def step_args(self) -> dict[str, Any]:
        return {}


class MatchingAdjustment(MatchingSettings):
    """Propensity-score matching (see :func:`follicle.causal.match`); ``stratify_by_pair`` gives each
    matched set its own baseline hazard (None: ``outcome_model.stratify_by_pair``)."""

    kind: Literal["matching"]
    name: AdjustmentName
    stratify_by_pair: bool | None = None

    def step_args(self) -> dict[str, Any]:
        return self.model_dump(include=set(MatchingSettings.model_fields))


class StratificationAdjustment(_Settings):
    """``n_strata`` strata cut at propensity-score quantiles of ``base`` (see
    :func:`follicle.causal.stratify`); the Cox model is stratified by stratum."""

    kind: Literal["stratification"]
    name: AdjustmentName
    n_strata: int = Field(5, ge=2, le=100)
    base: Literal["all", "treated", "untreated"] = "all"

    def step_args(self) -> dict[str, Any]:
        return {"n_strata": self.n_strata, "base": self.base}


class IptwAdjustment(_Settings):
    """Inverse probability of treatment weights (see :func:`follicle.causal.ipw_weights`).

    ``truncate_percentile`` p caps the weights at their p-th and (100 - p)-th percentiles (None: no
    truncation). The weighted Cox model always uses the robust (sandwich) variance.
    """

    kind: Literal["iptw"]
    name: AdjustmentName
    estimand: Literal["ate", "att"] = "ate"
    stabilized: bool = True
    truncate_percentile: float | None = Field(None, gt=0, lt=50)

    def step_args(self) -> dict[str, Any]:
        p = self.truncate_percentile
        return {"estimand": self.estimand, "stabilized": self.stabilized,
                "truncate": None if p is None else (p, 100.0 - p)}


Adjustment = Annotated[
    CrudeAdjustment | MatchingAdjustment | StratificationAdjustment | IptwAdjustment, Field(discriminator="kind")
]
#: adjustments that need a propensity score
PS_KINDS = ("matching", "stratification", "iptw")


def _default_adjustments() -> list[Any]:
    return [MatchingAdjustment(kind="matching", name="matching")]


class AnalysisSettings(_Settings):
    """All statistical settings of a study; ``balance_threshold`` is the largest acceptable |SMD|.

    ``adjustments`` are estimated in the order listed; ``primary`` names the one whose numbers
    fill the top-level fields of results.json (default: the first).
    """

    propensity: PropensitySettings = Field(default_factory=PropensitySettings)
    outcome_model: OutcomeModelSettings = Field(default_factory=OutcomeModelSettings)
    adjustments: list[Adjustment] = Field(default_factory=_default_adjustments, min_length=1)
    primary: AdjustmentName | None = None
    balance_threshold: float = Field(0.1, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _single_matching(cls, data: Any) -> Any:
        """An older spec's ``matching:`` block is one matching adjustment named ``matching``."""
        if isinstance(data, dict) and "matching" in data:
            data = dict(data)
            matching = data.pop("matching")
            if "adjustments" in data:
                raise ValueError("give the adjustments as 'adjustments' (or the older single 'matching'), not both")
            data["adjustments"] = [{"kind": "matching", "name": "matching", **(matching if isinstance(matching, dict) else {})}]
        return data

    @model_validator(mode="after")
    def _names(self) -> AnalysisSettings:
        names = [a.name for a in self.adjustments]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"adjustment names must be unique; repeated: {', '.join(twice)}")
        if self.primary is not None and self.primary not in names:
            raise ValueError(f"primary adjustment {self.primary!r} is not among the adjustments ({', '.join(names)})")
        return self

    @property
    def primary_adjustment(self) -> Any:
        """The adjustment whose numbers fill the top-level fields of results.json."""
        return next((a for a in self.adjustments if a.name == self.primary), self.adjustments[0])

    def adjustment(self, name: str) -> Any:
        return next(a for a in self.adjustments if a.name == name)

    @property
    def needs_propensity(self) -> bool:
        return any(a.kind in PS_KINDS for a in self.adjustments)
