"""Study specification and cohort engine: spec (pydantic) -> cohorts in the database (Ibis) ->
one analysis table per comparison. See docs/analysis-table.md."""

from follicle.study.counts import cohort_counts
from follicle.study.hashing import part_hashes, spec_hash
from follicle.study.population import Population, StudySession, build_population
from follicle.study.settings import (
    AnalysisSettings,
    CrudeAdjustment,
    IptwAdjustment,
    MatchingAdjustment,
    MatchingSettings,
    OutcomeModelSettings,
    PropensitySettings,
    StratificationAdjustment,
)
from follicle.study.spec import DefaultCovariates, StudySpec, load_spec, parse_spec

__all__ = [
    "AnalysisSettings",
    "CrudeAdjustment",
    "DefaultCovariates",
    "IptwAdjustment",
    "MatchingAdjustment",
    "MatchingSettings",
    "OutcomeModelSettings",
    "Population",
    "PropensitySettings",
    "StudySession",
    "StratificationAdjustment",
    "StudySpec",
    "build_population",
    "cohort_counts",
    "load_spec",
    "parse_spec",
    "part_hashes",
    "spec_hash",
]
