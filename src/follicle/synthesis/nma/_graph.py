"""Network structure: treatments, designs, connectivity, and netmeta's checks of multi-arm studies.

:func:`prepare` orders the contrasts as netmeta does (``treat1 < treat2`` within a row, rows by study,
treat1, treat2), checks that every multi-arm study gives all its comparisons consistently, and that
the network is connected; a disconnected network is refused with its sub-networks named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from follicle.errors import InputError

TOL_MULTIARM = 0.001  # netmeta's default tol.multiarm


@dataclass(frozen=True)
class Network:
    """Contrasts in netmeta's order with integer positions; arrays have one entry per comparison."""

    treatments: list[str]  # sorted labels; positions index into this list
    study: np.ndarray
    treat1: np.ndarray
    treat2: np.ndarray
    pos1: np.ndarray
    pos2: np.ndarray
    te: np.ndarray
    se: np.ndarray
    narms: np.ndarray  # arms of the study of each comparison
    frame: pd.DataFrame  # the ordered contrast rows with any arm-level columns

    @property
    def m(self) -> int:
        return len(self.te)

    @property
    def n(self) -> int:
        return len(self.treatments)

    @property
    def studies(self) -> list[str]:
        return list(dict.fromkeys(self.study))

    def design_of(self) -> dict[str, str]:
        """Design (the set of treatments compared, joined by ':') of each study."""
        out: dict[str, set[str]] = {}
        for s, a, b in zip(self.study, self.treat1, self.treat2):
            out.setdefault(s, set()).update((a, b))
        return {s: ":".join(sorted(t)) for s, t in out.items()}


def components(edges: list[tuple[str, str]], nodes: list[str]) -> list[list[str]]:
    """Connected components (each sorted), largest first."""
    parent = {v: v for v in nodes}

    def find(v: str) -> str:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for v in nodes:
        groups.setdefault(find(v), []).append(v)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def _check_multiarm(frame: pd.DataFrame) -> None:
    problems = []
    for study, g in frame.groupby("study", sort=False):
        if len(g) == 1:
            continue
        trts = sorted(set(g["treat1"]) | set(g["treat2"]))
        p = len(trts)
        pairs = list(zip(g["treat1"], g["treat2"]))
        if len(set(pairs)) != len(pairs):
            problems.append(f"study {study!r}: a comparison is given twice")
            continue
        if len(g) != p * (p - 1) // 2:
            problems.append(f"study {study!r}: {p} treatments need {p * (p - 1) // 2} comparisons (all pairs); "
                            f"got {len(g)}")
            continue
        pos = {t: i for i, t in enumerate(trts)}
        bmat = np.zeros((len(g), p))
        bmat[np.arange(len(g)), [pos[t] for t in g["treat1"]]] = 1
        bmat[np.arange(len(g)), [pos[t] for t in g["treat2"]]] = -1
        te = g["TE"].to_numpy()
        resid = te - bmat @ (np.linalg.pinv(bmat) @ te)
        if np.any(np.abs(resid) > TOL_MULTIARM):
            problems.append(f"study {study!r}: inconsistent treatment estimates (A-B + B-C differs from A-C by up "
                            f"to {np.max(np.abs(resid)):.4g}; tolerance {TOL_MULTIARM})")
        arm_var = np.linalg.pinv(np.abs(bmat)) @ (g["seTE"].to_numpy() ** 2)
        if np.any(arm_var < 0):
            problems.append(f"study {study!r}: the variances imply a negative arm variance")
    if problems:
        raise InputError("multi-arm studies cannot enter the network", problems=problems)


def prepare(frame: pd.DataFrame) -> Network:
    """Order, check and index contrasts (netmeta's ``netmeta()`` steps 4-5)."""
    df = frame.copy().reset_index(drop=True)
    if df.empty:
        raise InputError("no comparisons to analyse")
    same = df["treat1"] == df["treat2"]
    if same.any():
        raise InputError("treatments must differ within a comparison",
                         problems=[f"study {s!r}: {t} vs {t}" for s, t in zip(df.loc[same, "study"], df.loc[same, "treat1"])])
    flip = df["treat1"] > df["treat2"]
    if flip.any():
        df.loc[flip, "TE"] = -df.loc[flip, "TE"]
        df.loc[flip, ["treat1", "treat2"]] = df.loc[flip, ["treat2", "treat1"]].to_numpy()
        for a, b in (("n1", "n2"), ("event1", "event2"), ("mean1", "mean2"), ("sd1", "sd2")):
            if a in df and b in df:
                df.loc[flip, [a, b]] = df.loc[flip, [b, a]].to_numpy()
    df = df.sort_values(["study", "treat1", "treat2"], kind="mergesort").reset_index(drop=True)
    _check_multiarm(df)
    treatments = sorted(set(df["treat1"]) | set(df["treat2"]))
    comps = components(list(zip(df["treat1"], df["treat2"])), treatments)
    if len(comps) > 1:
        parts = []
        for i, c in enumerate(comps, 1):
            studs = sorted(set(df.loc[df["treat1"].isin(c), "study"]))
            parts.append(f"sub-network {i}: treatments {', '.join(c)} (studies: {', '.join(studs)})")
        raise InputError(f"the network is disconnected: it consists of {len(comps)} separate sub-networks, which "
                         f"share no treatment, so they cannot be compared; analyse each sub-network on its own or "
                         f"add studies that connect them", problems=parts)
    pos = {t: i for i, t in enumerate(treatments)}
    counts = df.groupby("study", sort=False)["TE"].transform("size").to_numpy()
    narms = (1 + np.sqrt(8 * counts + 1)) / 2
    return Network(
        treatments=treatments, study=df["study"].to_numpy(dtype=object), treat1=df["treat1"].to_numpy(dtype=object),
        treat2=df["treat2"].to_numpy(dtype=object), pos1=df["treat1"].map(pos).to_numpy(),
        pos2=df["treat2"].map(pos).to_numpy(), te=df["TE"].to_numpy(dtype=float),
        se=df["seTE"].to_numpy(dtype=float), narms=np.rint(narms).astype(int), frame=df,
    )


def incidence(pos1: np.ndarray, pos2: np.ndarray, n: int) -> np.ndarray:
    """Edge-vertex incidence matrix B (m x n): +1 at treat1, -1 at treat2 (netmeta ``createB``)."""
    b = np.zeros((len(pos1), n))
    b[np.arange(len(pos1)), pos1] = 1.0
    b[np.arange(len(pos1)), pos2] = -1.0
    return b


def full_incidence(n: int) -> np.ndarray:
    """Incidence matrix of the complete graph, rows (1,2), (1,3), ..., (n-1,n)."""
    pairs = [(i, j) for i in range(n - 1) for j in range(i + 1, n)]
    return incidence(np.array([p[0] for p in pairs], dtype=int), np.array([p[1] for p in pairs], dtype=int), n)
