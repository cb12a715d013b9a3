"""Design-based decomposition of Cochran's Q (netmeta ``decomp.design``; Krahn et al. 2013).

Q of the whole network splits into a within-designs part (heterogeneity among studies of the same
design, i.e. the same set of treatments) and a between-designs part (inconsistency of the
design-by-treatment interaction model, Higgins et al. 2012). Each design's within-design Q is the Q
of a network meta-analysis of that design's studies alone (a multivariate common-effect
meta-analysis). The between-designs Q is also given under a random-effects model whose tau^2 is the
DerSimonian-Laird estimate of the full design-by-treatment interaction model (netmeta ``tau.within``),
and after detaching each design in turn (the between-designs Q of the network without it).

References
----------
Krahn U, Binder H, König J (2013). A graphical tool for locating inconsistency in network
meta-analyses. BMC Med Res Methodol 13:35.
Higgins JPT, Jackson D, Barrett JK, Lu G, Ades AE, White IR (2012). Consistency and inconsistency in
network meta-analysis: concepts and models for multi-arm studies. Res Synth Methods 3:98-110.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from follicle.synthesis.nma._graph import Network, components, incidence
from follicle.synthesis.nma._model import adjusted_variances, fit_graph, q_pvalue
from follicle.synthesis.nma.fit import NetworkMetaAnalysis


def _subnetwork(net: Network, keep: np.ndarray) -> Network:
    treatments = sorted(set(net.treat1[keep]) | set(net.treat2[keep]))
    pos = {t: i for i, t in enumerate(treatments)}
    return Network(treatments=treatments, study=net.study[keep], treat1=net.treat1[keep], treat2=net.treat2[keep],
                   pos1=np.array([pos[t] for t in net.treat1[keep]], dtype=int),
                   pos2=np.array([pos[t] for t in net.treat2[keep]], dtype=int), te=net.te[keep], se=net.se[keep],
                   narms=net.narms[keep], frame=net.frame.iloc[:0])  # internal fits need no arm data


def _design_pieces(net: Network, tau2: float) -> tuple[float, int, float, dict[str, tuple[float, int]]]:
    """Within-design Q (sum and per design), df, and the DL trace term, at a given tau^2."""
    design = net.design_of()
    row_design = np.array([design[s] for s in net.study])
    q_tot, df_tot, trace = 0.0, 0, 0.0
    per: dict[str, tuple[float, int]] = {}
    for d in dict.fromkeys(row_design):
        sub = _subnetwork(net, row_design == d)
        fit = fit_graph(sub, adjusted_variances(sub, tau2))
        per[d] = (fit.q, fit.df)
        q_tot += fit.q
        df_tot += fit.df
        if fit.df > 0 and fit.hat is not None:
            b = incidence(sub.pos1, sub.pos2, sub.n)
            p = (b @ b.T) * (sub.study[:, None] == sub.study[None, :]) / 2.0
            trace += float(np.sum((np.eye(sub.m) - fit.hat) * (p * (1.0 / fit.var_adj)[None, :]).T))
    return q_tot, df_tot, trace, per


@dataclass
class Decomposition:
    """Q statistics of the whole network, within designs and between designs (plus per design)."""

    q_decomp: pd.DataFrame  # rows: whole network, within designs, between designs; columns q, df, p
    q_within_design: pd.DataFrame  # per design: q, df, p
    q_between_detached: pd.DataFrame  # per design: between-designs q, df, p after detaching it
    tau_within: float
    q_between_random: dict[str, float]  # q, df, p, tau_within

    def to_dict(self) -> dict[str, Any]:
        return {"q_decomp": self.q_decomp.to_dict(orient="records"),
                "q_within_design": self.q_within_design.to_dict(orient="records"),
                "q_between_detached": self.q_between_detached.to_dict(orient="records"),
                "q_between_random": self.q_between_random}


def decomp_design(res: NetworkMetaAnalysis) -> Decomposition:
    """Decompose Q as netmeta's ``decomp.design()`` (see module docstring)."""
    net = res.network
    q_het, df_het, trace, per = _design_pieces(net, 0.0)
    q_net, df_net = res.q, res.df
    q_inc, df_inc = q_net - q_het, df_net - df_het
    qd = pd.DataFrame({"source": ["whole network", "within designs", "between designs"],
                       "q": [q_net, q_het, q_inc], "df": [df_net, df_het, df_inc]})
    qd["p"] = [q_pvalue(q, df) for q, df in zip(qd["q"], qd["df"])]
    design = net.design_of()
    k_design = pd.Series(design).value_counts()
    within = pd.DataFrame([{"design": d, "k": int(k_design[d]), "q": q, "df": df, "p": q_pvalue(q, df)}
                           for d, (q, df) in per.items()]).sort_values("design").reset_index(drop=True)
    # tau^2 of the full design-by-treatment interaction model (netmeta tau.within; 0 when it has no df)
    tau2_w = max(0.0, (q_het - df_het) / trace) if df_het > 0 and trace > 0 else 0.0
    fit_w = fit_graph(net, adjusted_variances(net, tau2_w))
    q_het_w = _design_pieces(net, tau2_w)[0]
    q_rand = fit_w.q - q_het_w
    rand = {"q": q_rand, "df": df_inc, "p": q_pvalue(q_rand, df_inc), "tau_within": float(np.sqrt(tau2_w))}
    row_design = np.array([design[s] for s in net.study])
    var_adj = adjusted_variances(net, 0.0)  # whole studies are dropped, so their adjustment is unchanged
    detach = []
    for d in sorted(set(row_design)):
        keep = row_design != d
        if not keep.any():
            continue
        sub = _subnetwork(net, keep)
        if len(sub.treatments) != net.n or len(components(list(zip(sub.treat1, sub.treat2)), sub.treatments)) > 1:
            continue  # the design's effects cannot be separated from the rest (netmeta leaves it out too)
        fit = fit_graph(sub, var_adj[keep], with_hat=False)
        # within-design Q of the other designs is unchanged by detaching this one
        q_d, df_d = fit.q - (q_het - per[d][0]), fit.df - (df_het - per[d][1])
        detach.append({"design": d, "q": q_d, "df": df_d, "p": q_pvalue(q_d, df_d)})
    return Decomposition(q_decomp=qd, q_within_design=within, q_between_detached=pd.DataFrame(detach),
                         tau_within=float(np.sqrt(tau2_w)), q_between_random=rand)
