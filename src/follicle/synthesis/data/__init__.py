"""Bundled data: JAK inhibitor vs placebo RCT arms in alopecia areata (SALT <= 20).

``jaki_rct_salt20.csv`` is built by :func:`build_pairwise` (run ``scripts/build_jaki_rct_data.py``)
from ``shared/data/trials/jaki_aa_rct_arms.csv`` (published percentages and arm sizes, each with its
source and status). How it is built:

* responders per arm = ``round(percent x n / 100)`` (Python's round, halves to even; no published
  figure here falls on a half), because the source gives percentages, not counts;
* one comparison per active dose arm against the trial's placebo arm; when several dose arms share
  one placebo arm its patients and responders are split as evenly as whole numbers allow (larger
  shares first), so no placebo patient is counted twice (Cochrane Handbook v6.4, section 23.3.4);
* each trial's figures come from one publication (``percent_source``); a trial whose arms cite
  different sources (e.g. NEJM estimates mixed with topline press figures) is refused;
* ``n_status_t``/``n_status_c`` and ``percent_source`` are carried over: arm sizes marked
  ``recalled-unverified`` or ``news report of trial`` are approximate.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from follicle.errors import InputError

JAKI_RCT_FILE = "jaki_rct_salt20.csv"
_ARM_COLUMNS = ("trial", "nct", "drug", "dose", "arm", "n", "n_status", "endpoint", "week", "percent", "percent_source")


def _split(total: int, parts: int) -> list[int]:
    """Whole-number shares of *total* over *parts*, larger shares first."""
    base, extra = divmod(int(total), parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def build_pairwise(arms: pd.DataFrame, *, endpoint: str = "SALT<=20") -> pd.DataFrame:
    """Pairwise active-vs-placebo comparisons from arm-level percentages (see module docstring)."""
    missing = [c for c in _ARM_COLUMNS if c not in arms.columns]
    if missing:
        raise InputError(f"trial arms: missing columns {', '.join(missing)}")
    arms = arms[arms["endpoint"] == endpoint].copy()
    arms["responders"] = [int(round(p * n / 100)) for p, n in zip(arms["percent"], arms["n"])]
    rows = []
    for trial, g in arms.groupby("trial", sort=False):
        sources = g["percent_source"].unique()
        if len(sources) != 1:
            raise InputError(f"trial {trial}: arms cite different sources ({'; '.join(sources)}); do not mix them")
        plc = g[g["arm"] == "placebo"]
        act = g[g["arm"] == "active"]
        if len(plc) != 1 or act.empty:
            raise InputError(f"trial {trial}: need exactly one placebo arm and at least one active arm")
        pc = plc.iloc[0]
        n_split = _split(int(pc["n"]), len(act))
        e_split = _split(int(pc["responders"]), len(act))
        for (_, a), nc, ec in zip(act.iterrows(), n_split, e_split):
            rows.append(
                {
                    "study": f"{trial} {a['dose']}",
                    "trial": trial,
                    "nct": a["nct"],
                    "drug": a["drug"],
                    "dose": a["dose"],
                    "week": int(a["week"]),
                    "endpoint": endpoint,
                    "events_t": int(a["responders"]),
                    "total_t": int(a["n"]),
                    "events_c": ec,
                    "total_c": nc,
                    "percent_t": float(a["percent"]),
                    "percent_c": float(pc["percent"]),
                    "placebo_shared_by": len(act),
                    "n_status_t": a["n_status"],
                    "n_status_c": pc["n_status"],
                    "percent_source": sources[0],
                }
            )
    out = pd.DataFrame(rows)
    assert np.all(out["events_t"] <= out["total_t"])
    return out


def load_jaki_rct() -> pd.DataFrame:
    """The bundled JAKi vs placebo SALT <= 20 comparisons (one row per active dose arm)."""
    with resources.files(__package__).joinpath(JAKI_RCT_FILE).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def jaki_trial_arms() -> pd.DataFrame:
    """The trial arms behind :func:`load_jaki_rct`, one row per arm as in the shared
    ``jaki_aa_rct_arms.csv`` (columns trial, nct, drug, dose, arm, n, n_status, endpoint, week, percent,
    percent_source): each placebo arm is the sum of its shares, which :func:`build_pairwise` split
    without loss, so a network meta-analysis can keep every trial as one multi-arm study."""
    pw = load_jaki_rct()
    rows = []
    for trial, g in pw.groupby("trial", sort=False):
        first = g.iloc[0]
        for _, a in g.iterrows():
            rows.append({"trial": trial, "nct": a["nct"], "drug": a["drug"], "dose": a["dose"], "arm": "active",
                         "n": int(a["total_t"]), "n_status": a["n_status_t"], "endpoint": a["endpoint"],
                         "week": int(a["week"]), "percent": float(a["percent_t"]), "percent_source": a["percent_source"]})
        rows.append({"trial": trial, "nct": first["nct"], "drug": "placebo", "dose": "", "arm": "placebo",
                     "n": int(g["total_c"].sum()), "n_status": first["n_status_c"], "endpoint": first["endpoint"],
                     "week": int(first["week"]), "percent": float(first["percent_c"]),
                     "percent_source": first["percent_source"]})
    return pd.DataFrame(rows, columns=list(_ARM_COLUMNS))


__all__ = ["build_pairwise", "jaki_trial_arms", "load_jaki_rct", "JAKI_RCT_FILE"]
