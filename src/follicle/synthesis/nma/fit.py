"""Frequentist network meta-analysis as R's netmeta fits it: :func:`netmeta` and its result objects.

Common-effect and random-effects models are both fitted (as netmeta does): the random-effects model
adds netmeta's tau^2 (generalised DerSimonian-Laird) to every comparison's variance before the
multi-arm weight reduction. Direct estimates (pairwise inverse-variance meta-analyses of each
comparison, with the network tau^2 in the random-effects model), the proportion of direct evidence
(König et al. 2013) and the back-calculated indirect estimates are computed here too, as in netmeta.

References
----------
Rücker G (2012). Network meta-analysis, electrical networks and graph theory. Res Synth Methods 3:312-24.
König J, Krahn U, Binder H (2013). Visualizing the flow of evidence in network meta-analysis and
characterizing mixed treatment comparisons. Stat Med 32:5414-29.
Schwarzer G, Carpenter JR, Rücker G (2015). Meta-Analysis with R, chapter 8. Springer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import norm, t

from follicle.errors import InputError
from follicle.synthesis.nma._graph import Network, prepare
from follicle.synthesis.nma._model import (
    GraphFit,
    adjusted_variances,
    dl_pairwise,
    fit_graph,
    i2_ci,
    pooled_iv,
    q_pvalue,
    tau2_dl,
)
from follicle.synthesis.nma._pairwise import RATIO_MEASURES, Contrasts

Model = Literal["common", "random"]
_EPS = np.sqrt(np.finfo(float).eps)


def _ci(te: np.ndarray, se: np.ndarray, level: float, df: float | None = None):
    q = norm.isf((1 - level) / 2) if df is None else t.isf((1 - level) / 2, df)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = te / se
    return te - q * se, te + q * se, z, 2 * norm.sf(np.abs(z))


@dataclass
class ModelEstimates:
    """Network, direct and indirect estimates of one model; n x n matrices, [i, j] = treatment i vs j."""

    model: str
    treatments: list[str]
    level: float
    te: np.ndarray
    se: np.ndarray
    cov_centred: np.ndarray  # covariance of the centred treatment effects (Laplacian pseudoinverse)
    direct_te: np.ndarray
    direct_se: np.ndarray
    prop_direct: np.ndarray
    indirect_te: np.ndarray
    indirect_se: np.ndarray
    fitted: np.ndarray  # consistent estimate of each comparison row (netmeta TE.nma)
    se_adj: np.ndarray  # multi-arm-adjusted standard error of each comparison row
    predict_low: np.ndarray | None = None
    predict_high: np.ndarray | None = None

    def index(self, treatment: str) -> int:
        try:
            return self.treatments.index(treatment)
        except ValueError:
            raise InputError(f"treatment {treatment!r} is not in the network "
                             f"(treatments: {', '.join(self.treatments)})") from None

    @property
    def ci_low(self) -> np.ndarray:
        return _ci(self.te, self.se, self.level)[0]

    @property
    def ci_high(self) -> np.ndarray:
        return _ci(self.te, self.se, self.level)[1]

    @property
    def pval(self) -> np.ndarray:
        p = _ci(self.te, self.se, self.level)[3]
        np.fill_diagonal(p, np.nan)
        return p

    def to_dict(self) -> dict[str, Any]:
        """The n x n matrices as nested lists (None for undefined cells), for JSON."""

        def mat(x: np.ndarray | None) -> list[list[float | None]] | None:
            return None if x is None else [[float(v) if np.isfinite(v) else None for v in row] for row in x]

        return {"model": self.model, "treatments": self.treatments, "level": self.level, "te": mat(self.te),
                "se": mat(self.se), "ci_low": mat(self.ci_low), "ci_high": mat(self.ci_high),
                "direct_te": mat(self.direct_te), "direct_se": mat(self.direct_se),
                "prop_direct": mat(self.prop_direct), "indirect_te": mat(self.indirect_te),
                "indirect_se": mat(self.indirect_se), "predict_low": mat(self.predict_low),
                "predict_high": mat(self.predict_high)}

    def vs_reference(self, reference: str) -> pd.DataFrame:
        """Every other treatment against *reference*: estimate, se, CI, z, p (analysis scale)."""
        r = self.index(reference)
        rows = []
        for i, trt in enumerate(self.treatments):
            if i == r:
                continue
            lo, hi, z, p = _ci(self.te[i, r], self.se[i, r], self.level)
            row = {"treatment": trt, "comparator": reference, "estimate": float(self.te[i, r]),
                   "se": float(self.se[i, r]), "ci_low": float(lo), "ci_high": float(hi), "z": float(z), "p": float(p)}
            if self.predict_low is not None:
                row["pi_low"], row["pi_high"] = float(self.predict_low[i, r]), float(self.predict_high[i, r])
            rows.append(row)
        return pd.DataFrame(rows)


@dataclass
class NetworkMetaAnalysis:
    """Result of :func:`netmeta`: both models, heterogeneity, the network's structure and notes."""

    measure: str
    treatments: list[str]
    reference: str
    level: float
    network: Network
    common: ModelEstimates
    random: ModelEstimates
    q: float
    df: int
    tau2: float  # nan when df = 0 (the random-effects model then equals the common-effect model)
    i2: float
    i2_low: float
    i2_high: float
    fit_common: GraphFit
    fit_random: GraphFit
    direct_stats: pd.DataFrame  # per comparison with direct evidence: k, Q, tau2, I2 (pairwise DL)
    notes: list[str] = field(default_factory=list)

    @property
    def is_ratio(self) -> bool:
        return self.measure in RATIO_MEASURES

    @property
    def q_p(self) -> float:
        return q_pvalue(self.q, self.df)

    @property
    def tau(self) -> float:
        return float(np.sqrt(self.tau2)) if np.isfinite(self.tau2) else float("nan")

    @property
    def studies(self) -> list[str]:
        return self.network.studies

    @property
    def designs(self) -> dict[str, str]:
        return self.network.design_of()

    @property
    def k(self) -> int:
        return len(self.studies)

    @property
    def n_studies_matrix(self) -> np.ndarray:
        """Number of studies comparing each pair directly (netmeta A.matrix)."""
        n = len(self.treatments)
        a = np.zeros((n, n), dtype=int)
        for i, j in zip(self.network.pos1, self.network.pos2):
            a[i, j] += 1
            a[j, i] += 1
        return a

    def model(self, which: Model) -> ModelEstimates:
        if which not in ("common", "random"):
            raise InputError(f"model must be 'common' or 'random'; got {which!r}")
        return self.common if which == "common" else self.random

    def participants(self) -> dict[str, int] | None:
        """Participants per treatment (arm data only), counting each arm once."""
        f = self.network.frame
        if "n1" not in f:
            return None
        arms = pd.concat([f[["study", "treat1", "n1"]].set_axis(["study", "t", "n"], axis=1),
                          f[["study", "treat2", "n2"]].set_axis(["study", "t", "n"], axis=1)]).drop_duplicates(["study", "t"])
        return {k: int(v) for k, v in arms.groupby("t")["n"].sum().items()}

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-ready summary: structure, heterogeneity, both models' effects against the reference."""

        def clean(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                    for r in records]

        return {"measure": self.measure, "scale": "log" if self.is_ratio else "identity", "reference": self.reference,
                "treatments": self.treatments, "k": self.k, "m": self.network.m, "n": len(self.treatments),
                "designs": sorted(set(self.designs.values())),
                "heterogeneity": {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                                  for k, v in self.heterogeneity().items()},
                "common": clean(self.common.vs_reference(self.reference).to_dict(orient="records")),
                "random": clean(self.random.vs_reference(self.reference).to_dict(orient="records")),
                "notes": list(self.notes)}

    def heterogeneity(self) -> dict[str, Any]:
        return {"q": self.q, "df": self.df, "q_p": self.q_p, "tau2": self.tau2, "tau": self.tau, "i2": self.i2,
                "i2_ci_low": self.i2_low, "i2_ci_high": self.i2_high}


def _direct(net: Network, tau2: float) -> tuple[np.ndarray, np.ndarray]:
    n = net.n
    te = np.full((n, n), np.nan)
    se = np.full((n, n), np.nan)
    for (i, j), idx in pd.Series(range(net.m)).groupby([net.pos1, net.pos2]).groups.items():
        idx = np.asarray(idx)
        m, s = pooled_iv(net.te[idx], net.se[idx], tau2)
        te[i, j], te[j, i] = m, -m
        se[i, j] = se[j, i] = s
    return te, se


def _estimates(model: str, net: Network, fit: GraphFit, tau2: float, level: float) -> ModelEstimates:
    n = net.n
    dte, dse = _direct(net, tau2)
    if n == 2:
        prop = np.ones((n, n))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            prop = np.where(np.isfinite(dse), fit.se**2 / dse**2, 0.0)
    np.fill_diagonal(prop, np.nan)
    p = prop.copy()
    p[np.abs(p - 1) < _EPS] = np.nan
    p[p > 1] = np.nan
    d0 = np.where(np.abs(prop) < _EPS, 0.0, dte)
    with np.errstate(invalid="ignore", divide="ignore"):
        ite = (fit.te - p * d0) / (1 - p)
        ise = np.sqrt(fit.se**2 / (1 - p))
    return ModelEstimates(model=model, treatments=list(net.treatments), level=level, te=fit.te, se=fit.se,
                          cov_centred=fit.lplus, direct_te=dte, direct_se=dse, prop_direct=prop, indirect_te=ite,
                          indirect_se=ise, fitted=fit.te_nma, se_adj=np.sqrt(fit.var_adj))


def netmeta(
    contrasts: Contrasts,
    *,
    reference: str | None = None,
    level: float = 0.95,
    level_predict: float = 0.95,
    tau2_preset: float | None = None,
) -> NetworkMetaAnalysis:
    """Fit the common-effect and random-effects network meta-analysis (netmeta ``netmeta()``).

    *contrasts* come from :func:`follicle.synthesis.nma.pairwise` or
    :func:`follicle.synthesis.nma.contrasts_from_frame`. *reference* defaults to netmeta's choice
    (the first treatment in sorted order). *tau2_preset* fixes tau^2 (netmeta ``tau.preset``, as tau^2).
    """
    if not 0 < level < 1 or not 0 < level_predict < 1:
        raise InputError(f"level must be between 0 and 1; got {level} / {level_predict}")
    net = prepare(contrasts.frame)
    notes = list(contrasts.notes)
    if reference is None:
        reference = net.treatments[0]
    elif reference not in net.treatments:
        raise InputError(f"reference treatment {reference!r} is not in the network "
                         f"(treatments: {', '.join(net.treatments)})")
    fit_c = fit_graph(net, adjusted_variances(net, 0.0))
    tau2 = tau2_dl(net, fit_c) if tau2_preset is None else float(tau2_preset)
    if tau2_preset is not None and tau2_preset < 0:
        raise InputError(f"tau2_preset must be >= 0; got {tau2_preset}")
    if fit_c.df == 0 and tau2_preset is None:
        notes.append("no degrees of freedom for heterogeneity (each design has one study and there are no loops): "
                     "tau^2 cannot be estimated and the random-effects model equals the common-effect model")
    if len(net.studies) == 1:
        notes.append(f"single-study network ({net.studies[0]}): the estimates are that study's own comparisons; "
                     "there is no heterogeneity, inconsistency or indirect evidence to assess")
    fit_r = fit_graph(net, adjusted_variances(net, tau2 if np.isfinite(tau2) else 0.0))
    i2, i2_lo, i2_hi = i2_ci(fit_c.q, fit_c.df, level)
    common = _estimates("common", net, fit_c, 0.0, level)
    random = _estimates("random", net, fit_r, tau2 if np.isfinite(tau2) else 0.0, level)
    if fit_c.df >= 2 and np.isfinite(tau2):
        se_pred = np.sqrt(fit_r.se**2 + tau2)
        lo, hi, _, _ = _ci(fit_r.te, se_pred, level_predict, df=fit_c.df - 1)
        np.fill_diagonal(lo, 0.0)
        np.fill_diagonal(hi, 0.0)
        random.predict_low, random.predict_high = lo, hi
    rows = []
    for (i, j), idx in pd.Series(range(net.m)).groupby([net.pos1, net.pos2]).groups.items():
        idx = np.asarray(idx)
        q, t2, i2d = dl_pairwise(net.te[idx], net.se[idx])
        rows.append({"treat1": net.treatments[i], "treat2": net.treatments[j], "k": len(idx), "q": q,
                     "tau2": t2, "i2": i2d})
    return NetworkMetaAnalysis(
        measure=contrasts.measure, treatments=list(net.treatments), reference=reference, level=level, network=net,
        common=common, random=random, q=fit_c.q, df=fit_c.df, tau2=tau2, i2=i2, i2_low=i2_lo, i2_high=i2_hi,
        fit_common=fit_c, fit_random=fit_r, direct_stats=pd.DataFrame(rows), notes=notes,
    )
