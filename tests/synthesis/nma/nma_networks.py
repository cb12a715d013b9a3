"""Generated treatment networks (arm-level) for differential tests: two-arm, three-arm and four-arm
studies over a connected set of treatments, with true heterogeneity and, optionally, inconsistency."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _designs(rng: np.random.Generator, trts: list[str], k: int, multi: bool) -> list[list[str]]:
    order = list(rng.permutation(trts))
    designs = [[order[i], order[i + 1]] for i in range(len(order) - 1)]  # a spanning path: connected
    while len(designs) < k:
        size = 2
        if multi:
            size = int(rng.choice([2, 2, 3, 3, 4]))
        designs.append(list(rng.choice(trts, size=size, replace=False)))
    if multi:
        designs += [list(designs[-1])]  # a repeated multi-arm design: within-design heterogeneity
    return [list(d) for d in designs]


def binary_network(seed: int, n_trt: int = 5, k: int = 12, multi: bool = True, incoherence: float = 0.0,
                   tau: float = 0.3) -> pd.DataFrame:
    """Arms ``study, treatment, events, n`` with no zero cells; *incoherence* shifts one comparison."""
    rng = np.random.default_rng(seed)
    trts = [f"T{i}" for i in range(n_trt)]
    eff = dict(zip(trts, rng.normal(0, 0.6, n_trt)))
    rows = []
    for s, design in enumerate(_designs(rng, trts, k, multi)):
        base = rng.normal(-1.0, 0.5)
        study_re = {t: rng.normal(0, tau / np.sqrt(2)) for t in design}
        for t in design:
            shift = incoherence if (t == trts[1] and trts[0] in design) else 0.0
            lp = base + eff[t] + study_re[t] + shift
            n = int(rng.integers(40, 300))
            e = int(np.clip(rng.binomial(n, 1 / (1 + np.exp(-lp))), 1, n - 1))
            rows.append({"study": f"S{s:02d}", "treatment": t, "events": e, "n": n})
    return pd.DataFrame(rows)


def continuous_network(seed: int, n_trt: int = 5, k: int = 12, multi: bool = True, tau: float = 1.0) -> pd.DataFrame:
    """Arms ``study, treatment, mean, sd, n``."""
    rng = np.random.default_rng(seed)
    trts = [f"T{i}" for i in range(n_trt)]
    eff = dict(zip(trts, rng.normal(0, 2.0, n_trt)))
    rows = []
    for s, design in enumerate(_designs(rng, trts, k, multi)):
        base = rng.normal(10, 3)
        for t in design:
            n = int(rng.integers(20, 200))
            sd = float(rng.uniform(3, 8))
            mean = base + eff[t] + rng.normal(0, tau / np.sqrt(2)) + rng.normal(0, sd / np.sqrt(n))
            rows.append({"study": f"S{s:02d}", "treatment": t, "mean": mean, "sd": sd, "n": n})
    return pd.DataFrame(rows)
