"""Brent's root finder exactly as R's ``uniroot`` (``R_zeroin2`` in R's src/library/stats/src/zeroin.c).

Used where a published metafor figure depends on R's default root-finding tolerance, so the
same tolerance gives the same digits. Follicle's own defaults solve to ~1e-12 with scipy.

References
----------
Brent RP. Algorithms for Minimization without Derivatives. Prentice-Hall 1973, ch. 4.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_EPS = float(np.finfo(float).eps)


def zeroin(f: Callable[[float], float], ax: float, bx: float, *, tol: float = _EPS**0.25, maxit: int = 1000) -> float:
    """A root of *f* in [ax, bx] (f(ax), f(bx) of opposite signs), to absolute tolerance *tol*."""
    a, b = ax, bx
    fa, fb = f(a), f(b)
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise ArithmeticError("zeroin did not converge")
