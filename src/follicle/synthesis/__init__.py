"""Evidence synthesis: effect sizes, pooling (equal/random effects, Mantel-Haenszel, Peto),
heterogeneity, sensitivity, influence and small-study analyses (each isolated: see
:mod:`follicle.synthesis.auxiliary`), GRADE. Pure functions; no I/O (except reading the
bundled data set in :mod:`follicle.synthesis.data`)."""

from follicle.synthesis.auxiliary import Auxiliary, NotEstimable, auxiliary_analyses
from follicle.synthesis.bias import EggerResult, TrimFillResult, egger_test, trim_and_fill
from follicle.synthesis.effect_sizes import (
    EffectSizes,
    binary_effects,
    continuous_effects,
    generic_effects,
    proportion_effects,
)
from follicle.synthesis.grade import EvidenceProfile, evidence_profile, profile_table, summary_of_findings
from follicle.synthesis.heterogeneity import heterogeneity, qprofile_tau2_ci
from follicle.synthesis.influence import influence
from follicle.synthesis.pooling import MetaResult, fit_rma, meta_analysis
from follicle.synthesis.sensitivity import cumulative, leave_one_out, subgroups
from follicle.synthesis.spec import MetaSpec, run_spec
from follicle.synthesis.tabular import effects_from_frame
from follicle.synthesis.tau2 import Tau2Fit, estimate_tau2, fit_tau2

__all__ = [
    "EffectSizes", "binary_effects", "continuous_effects", "generic_effects", "proportion_effects",
    "estimate_tau2", "fit_tau2", "Tau2Fit", "influence", "Auxiliary", "NotEstimable", "auxiliary_analyses", "heterogeneity", "qprofile_tau2_ci", "MetaResult", "fit_rma", "meta_analysis",
    "leave_one_out", "cumulative", "subgroups", "EggerResult", "TrimFillResult", "egger_test", "trim_and_fill",
    "EvidenceProfile", "evidence_profile", "profile_table", "summary_of_findings", "MetaSpec", "run_spec", "effects_from_frame",
]
