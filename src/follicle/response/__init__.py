"""Response analytics: SALT scoring and endpoints, single-arm analysis, predictor models
(logistic, Firth, linear), safety incidence rates. Pure functions; no file or database I/O.

Public names are re-exported lazily (PEP 562), so ``follicle salt`` does not pay for importing
statsmodels and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "endpoints": ["EndpointSettings", "meets", "patient_endpoints", "percent_regrowth", "relative_reduction"],
    "firth": ["FirthLogisticRegression"],
    "predictors": ["ModelResult", "auc", "calibration", "fit_linear", "fit_logistic", "subgroup_table",
                   "univariable_screen"],
    "safety": ["count_events", "rate_table", "safety_rates"],
    "salt": ["SALT_WEIGHTS", "aa_iga", "check_clinro", "clinro_response", "salt_score", "score"],
    "single_arm": ["clopper_pearson", "responder_rate", "single_arm_summary"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"follicle.response.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'follicle.response' has no attribute {name!r}")
