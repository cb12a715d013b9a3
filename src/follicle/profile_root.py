"""The finite end of a profile-likelihood interval whose other end is infinite.

Shared by the Cox model (:mod:`follicle.survival._monotone`) and logistic regression
(:mod:`follicle.response.separation`) under monotone likelihood / separation: both solve
``dev(b) = 0`` for a deviance-minus-critical-value function that is negative near the supremum
(towards the infinite end) and positive far on the other side.
"""

from __future__ import annotations

from collections.abc import Callable

from scipy import optimize

#: Give up (NaN) when the bracket would have to reach further than this on the log scale.
MAX_STEP = 1e4


def finite_profile_end(dev: Callable[[float], float], sign: int) -> float:
    """Root of *dev* on the side opposite to *sign* (the direction of the infinite end).

    Starts at 0, moves away from the infinite end while ``dev < 0``, then doubles the step until the
    sign changes, and refines with Brent's method; NaN when no bracket is found within
    :data:`MAX_STEP`.
    """
    far, step = 0.0, 1.0
    while dev(far) < 0:  # the interval reaches past 0: move away from the infinite end
        far -= sign * step
        step *= 2
        if step > MAX_STEP:
            return float("nan")
    near = far + sign * step
    while dev(near) > 0:
        near += sign * step
        step *= 2
        if step > MAX_STEP:
            return float("nan")
    return float(optimize.brentq(dev, min(far, near), max(far, near), xtol=1e-10, rtol=1e-12))
