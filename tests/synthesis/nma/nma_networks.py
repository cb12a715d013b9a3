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


DATA = __import__("pathlib").Path(__file__).parent / "data"


def senn2013() -> pd.DataFrame:
    """netmeta's Senn2013 as contrast-level input (study, treatment1, treatment2, estimate, se)."""
    d = pd.read_csv(DATA / "senn2013.csv")
    return pd.DataFrame({"study": d.studlab, "treatment1": d.treat1, "treatment2": d.treat2, "estimate": d.TE,
                         "se": d.seTE})


def smokingcessation() -> pd.DataFrame:
    """netmeta's smokingcessation (wide) as long arm rows; studies numbered as rows."""
    d = pd.read_csv(DATA / "smokingcessation.csv", sep=";")
    rows = []
    for s, r in d.iterrows():
        for a in (1, 2, 3):
            if pd.notna(r[f"event{a}"]):
                rows.append({"study": f"{s + 1}", "treatment": r[f"treat{a}"], "events": int(r[f"event{a}"]),
                             "n": int(r[f"n{a}"])})
    return pd.DataFrame(rows)


def woods2010() -> pd.DataFrame:
    d = pd.read_csv(DATA / "woods2010.csv", sep=";")
    return pd.DataFrame({"study": d.author, "treatment": d.treatment, "events": d.r, "n": d.N})


def parkinson() -> pd.DataFrame:
    d = pd.read_csv(DATA / "parkinson.csv", sep=";")
    rows = []
    for _, r in d.iterrows():
        for a in (1, 2, 3):
            if pd.notna(r[f"Treatment{a}"]):
                rows.append({"study": str(int(r["Study"])), "treatment": f"trt{int(r[f'Treatment{a}'])}",
                             "mean": r[f"y{a}"], "sd": r[f"sd{a}"], "n": int(r[f"n{a}"])})
    return pd.DataFrame(rows)


def dong2013() -> pd.DataFrame:
    d = pd.read_csv(DATA / "dong2013.csv")
    return pd.DataFrame({"study": d.id.astype(str), "treatment": d.treatment, "events": d.death, "n": d.randomized})
