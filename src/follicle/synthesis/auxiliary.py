"""Auxiliary analyses around a pooled result, each isolated so that none can sink the main result.

Leave-one-out, influence diagnostics, Egger's regression test and trim-and-fill are computed
one by one; an analysis that fails (too few studies, a fit that cannot be computed, an
iteration that does not converge) becomes :class:`NotEstimable` with its reason, and the
others and the pooled estimate are reported as usual. The Q-profile CI for tau^2 is isolated
the same way inside :func:`follicle.synthesis.pooling.meta_analysis` (``not_estimable["tau2_ci"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from follicle.synthesis.bias import EggerResult, TrimFillResult, egger_test, trim_and_fill
from follicle.synthesis.effect_sizes import EffectSizes
from follicle.synthesis.influence import influence
from follicle.synthesis.pooling import MetaResult
from follicle.synthesis.sensitivity import leave_one_out

T = TypeVar("T")
AUXILIARY_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError, FloatingPointError)
EGGER_NOTE = "low power with fewer than 10 studies (Cochrane Handbook 13.3.5.4)"


@dataclass(frozen=True)
class NotEstimable:
    """An auxiliary analysis that could not be computed, and why."""

    analysis: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"estimable": False, "reason": self.reason}


def attempt(analysis: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | NotEstimable:
    """``fn(*args, **kwargs)``, or :class:`NotEstimable` naming the failure (numerical or input)."""
    try:
        return fn(*args, **kwargs)
    except AUXILIARY_ERRORS as exc:
        return NotEstimable(analysis, str(exc) or type(exc).__name__)


@dataclass(frozen=True)
class Auxiliary:
    """The auxiliary analyses of one pooled result; each a result or :class:`NotEstimable`."""

    leave_one_out: pd.DataFrame | NotEstimable
    influence: pd.DataFrame | NotEstimable
    egger: EggerResult | NotEstimable
    trimfill: TrimFillResult | NotEstimable

    def not_estimable(self) -> dict[str, str]:
        """Analysis name -> reason, for the ones that could not be computed."""
        return {name: v.reason for name, v in self._items() if isinstance(v, NotEstimable)}

    def _items(self) -> list[tuple[str, Any]]:
        return [("leave_one_out", self.leave_one_out), ("influence", self.influence), ("egger", self.egger),
                ("trimfill", self.trimfill)]

    def to_dict(self, k: int) -> dict[str, Any]:
        """JSON-ready: every analysis has ``estimable`` (and ``reason`` when False)."""
        out: dict[str, Any] = {}
        for name, v in self._items():
            if isinstance(v, NotEstimable):
                out[name] = v.to_dict()
            elif isinstance(v, pd.DataFrame):
                out[name] = {"estimable": True, "rows": v.to_dict(orient="records")}
            elif isinstance(v, EggerResult):
                out[name] = {"estimable": True} | v.__dict__ | {"note": EGGER_NOTE if k < 10 else ""}
            else:
                assert isinstance(v, TrimFillResult)
                out[name] = {"estimable": True, "k0": v.k0, "side": v.side, "se_k0": v.se_k0,
                             "filled_yi": v.filled_yi.tolist(), "filled_vi": v.filled_vi.tolist(),
                             "adjusted": v.adjusted}
        return out


def auxiliary_analyses(effects: EffectSizes, result: MetaResult) -> Auxiliary:
    """Leave-one-out, influence, Egger's test (metafor ``regtest``: the model's tau^2 method and
    test) and trim-and-fill for *result*, fitted to *effects*; none raises."""
    why = None
    if result.method in ("MH", "PETO"):
        why = (f"needs an inverse-variance model (EE or a tau2 estimator); method {result.method} "
               "pools 2x2 tables")
    elif not result.estimable:
        why = f"the pooled estimate is not estimable ({result.not_estimable['estimate']})"
    if why is not None:
        return Auxiliary(*(NotEstimable(name, why) for name in ("leave_one_out", "influence", "egger", "trimfill")))
    kw = {"method": result.method, "knha": result.knha, "level": result.level}
    return Auxiliary(
        leave_one_out=attempt("leave_one_out", leave_one_out, effects, **kw),
        influence=attempt("influence", influence, result),
        egger=attempt("egger", egger_test, effects.yi, effects.vi, method=result.method, knha=result.knha,
                      level=result.level),
        trimfill=attempt("trimfill", trim_and_fill, result),
    )
