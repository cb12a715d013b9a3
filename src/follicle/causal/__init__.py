"""Causal inference for comparative-effectiveness studies: propensity scores, matching, weighting,
stratification, covariate balance, E-values and empirical calibration. Pure functions, no I/O."""

from follicle.causal.balance import balance_table, smd
from follicle.causal.calibration import (
    CalibratedEstimate,
    EmpiricalNull,
    SystematicErrorModel,
    calibrate_ci,
    calibrate_p,
    fit_null,
    fit_systematic_error_model,
)
from follicle.causal.evalue import EValue, evalue, evalue_rr
from follicle.causal.matching import MatchResult, match, matched_frame, pooled_sd_logit
from follicle.causal.propensity import (
    PropensityModel,
    equipoise,
    fit_propensity,
    preference_score,
    ps_auc,
)
from follicle.causal.stratification import strata_table, stratify, stratum_weights
from follicle.causal.weighting import effective_sample_size, ipw_weights

__all__ = [
    "CalibratedEstimate", "EValue", "EmpiricalNull", "MatchResult", "PropensityModel", "SystematicErrorModel",
    "balance_table", "calibrate_ci", "calibrate_p", "effective_sample_size", "equipoise", "evalue", "evalue_rr",
    "fit_null", "fit_propensity", "fit_systematic_error_model", "ipw_weights", "match", "matched_frame",
    "pooled_sd_logit", "preference_score", "ps_auc", "smd", "strata_table", "stratify", "stratum_weights",
]
