"""Direct versus indirect evidence per comparison: netmeta's ``netsplit`` with the back-calculation method.

For each pair of treatments the network estimate is split into its direct part (the pairwise
meta-analysis of the studies comparing the pair; random effects with the network's tau^2) and an
indirect part back-calculated from the proportion of direct evidence P (König et al. 2013):
indirect = (network - P direct) / (1 - P), var(indirect) = var(network) / (1 - P). Separating indirect
from direct evidence (SIDE) then compares them: difference direct - indirect with a z-test (Dias et al.
2010). A comparison with only direct (P ~ 1) or only indirect (P ~ 0) evidence has no test.

References
----------
Dias S, Welton NJ, Caldwell DM, Ades AE (2010). Checking consistency in mixed treatment comparison
meta-analysis. Stat Med 29:932-44.
König J, Krahn U, Binder H (2013). Visualizing the flow of evidence in network meta-analysis and
characterizing mixed treatment comparisons. Stat Med 32:5414-29.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from follicle.synthesis.nma.fit import Model, NetworkMetaAnalysis

TOL_DIRECT = 0.0005  # netmeta's tol.direct


def netsplit(res: NetworkMetaAnalysis, model: Model = "random") -> pd.DataFrame:
    """One row per pair of treatments: k, proportion direct, network, direct, indirect and their difference.

    Comparisons are ``treat1`` vs ``treat2`` with the reference treatment as ``treat2`` where it
    appears (netmeta's ``baseline.reference``); estimates on the analysis scale.
    """
    est = res.model(model)
    trts = res.treatments
    kmat = res.n_studies_matrix
    z = norm.isf((1 - res.level) / 2)
    direct_stats = {(r.treat1, r.treat2): r for r in res.direct_stats.itertuples()}
    rows = []
    for i in range(len(trts) - 1):
        for j in range(i + 1, len(trts)):
            a, b = (j, i) if trts[i] == res.reference else (i, j)
            prop = float(est.prop_direct[a, b])
            k = int(kmat[a, b])
            net_te, net_se = float(est.te[a, b]), float(est.se[a, b])
            d_te, d_se = float(est.direct_te[a, b]), float(est.direct_se[a, b])
            i_te, i_se = float(est.indirect_te[a, b]), float(est.indirect_se[a, b])
            if abs(prop) < TOL_DIRECT:
                d_te = d_se = np.nan
            if abs(prop - 1) < TOL_DIRECT:
                i_te = i_se = np.nan
            if k == 0:
                i_te, i_se = net_te, net_se
            diff = d_te - i_te
            diff_se = float(np.sqrt(d_se**2 + i_se**2))
            zval = diff / diff_se if np.isfinite(diff) else np.nan
            stats = direct_stats.get((trts[min(a, b)], trts[max(a, b)]))
            rows.append({
                "comparison": f"{trts[a]}:{trts[b]}", "treat1": trts[a], "treat2": trts[b], "k": k, "prop_direct": prop,
                "network": net_te, "network_se": net_se, "network_low": net_te - z * net_se,
                "network_high": net_te + z * net_se,
                "direct": d_te, "direct_se": d_se, "direct_low": d_te - z * d_se, "direct_high": d_te + z * d_se,
                "direct_q": stats.q if stats is not None else np.nan,
                "direct_tau2": stats.tau2 if stats is not None else np.nan,
                "direct_i2": stats.i2 if stats is not None else np.nan,
                "indirect": i_te, "indirect_se": i_se, "indirect_low": i_te - z * i_se, "indirect_high": i_te + z * i_se,
                "difference": diff, "difference_se": diff_se, "difference_low": diff - z * diff_se,
                "difference_high": diff + z * diff_se, "z": zval,
                "p": float(2 * norm.sf(abs(zval))) if np.isfinite(zval) else np.nan,
            })
    return pd.DataFrame(rows)
