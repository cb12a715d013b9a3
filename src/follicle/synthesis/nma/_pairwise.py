"""Contrasts for network meta-analysis from arm-level or contrast-level input, as netmeta builds them.

Arm-level rows (``study, treatment, events, n`` or ``study, treatment, mean, sd, n``) become all
pairwise contrasts within each study (a p-arm study gives p(p-1)/2 rows), following netmeta's
``pairwise()`` with meta's ``metabin``/``metacont`` formulas:

* OR, RR, RD: a study with a zero cell in any arm (no events, or all events, in any arm) gets the
  increment ``incr`` (0.5) added to every cell of every one of its comparisons (``allincr`` adds it
  to all studies when any study has an arm without events; ``addincr`` to all studies always);
  RD estimates use the raw proportions and the increment only in the variance;
* OR and RR comparisons with no events in both arms (OR also: all events in both arms) are not
  estimable and are dropped unless ``allstudies``; a multi-arm study that loses a comparison this way
  cannot enter the network (netmeta stops there too) and is reported by name;
* MD: difference in means; SMD: Cohen's d with the SD pooled over all arms of a multi-arm study and
  the variance of Crippa & Orsini (2016), which keeps multi-arm SMDs consistent.

Contrast-level rows (``study, treatment1, treatment2, estimate, se``) are taken as given; a multi-arm
study must supply every pairwise comparison, consistent within ``tol_multiarm`` (netmeta's check).

References
----------
Schwarzer G, Carpenter JR, Rücker G (2015). Meta-Analysis with R, chapters 3 and 8. Springer.
Crippa A, Orsini N (2016). Dose-response meta-analysis of differences in means. BMC Med Res
Methodol 16:91.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from follicle.errors import InputError

MEASURES = ("OR", "RR", "RD", "MD", "SMD")
RATIO_MEASURES = ("OR", "RR")
BINARY = ("OR", "RR", "RD")


@dataclass
class Contrasts:
    """Pairwise contrasts, one row per comparison: study, treat1, treat2, TE, seTE (+ arm data).

    ``TE`` is treat1 minus treat2 on the analysis scale (log for OR/RR). ``notes`` say what was done
    to the data (increments, dropped comparisons or studies), so nothing changes silently.
    """

    frame: pd.DataFrame
    measure: str
    notes: list[str] = field(default_factory=list)

    @property
    def studies(self) -> list[str]:
        return list(dict.fromkeys(self.frame["study"]))


def _num(frame: pd.DataFrame, col: str, source: str) -> np.ndarray:
    vals = pd.to_numeric(frame[col], errors="coerce")
    bad = vals.isna()
    if bad.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(bad.to_numpy())[:5])
        raise InputError(f"{source}: column {col!r} must be numeric (CSV rows {rows})")
    return vals.to_numpy(dtype=float)


def _check_columns(frame: pd.DataFrame, need: tuple[str, ...], source: str) -> None:
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} (have: {', '.join(frame.columns)})")


def _arm_table(frame: pd.DataFrame, measure: str, source: str) -> pd.DataFrame:
    """Validated arm rows (study, treatment, row, and the numeric columns of the measure)."""
    cols = ("study", "treatment", "events", "n") if measure in BINARY else ("study", "treatment", "mean", "sd", "n")
    _check_columns(frame, cols, source)
    arms = pd.DataFrame({"study": frame["study"].astype(str).str.strip(),
                         "treatment": frame["treatment"].astype(str).str.strip(),
                         "row": np.arange(len(frame)) + 2})
    if (arms["study"] == "").any() or (arms["treatment"] == "").any():
        rows = arms.loc[(arms["study"] == "") | (arms["treatment"] == ""), "row"].tolist()[:5]
        raise InputError(f"{source}: empty study or treatment (CSV rows {', '.join(map(str, rows))})")
    for c in cols[2:]:
        arms[c] = _num(frame, c, source)
    problems = []
    n = arms["n"].to_numpy()
    if measure in BINARY:
        e = arms["events"].to_numpy()
        for r, ei, ni in zip(arms["row"], e, n):
            if ni <= 0 or ni != int(ni):
                problems.append(f"row {r}: n must be a positive whole number; got {ni:g}")
            elif ei < 0 or ei != int(ei) or ei > ni:
                problems.append(f"row {r}: events must be a whole number between 0 and n = {ni:g}; got {ei:g}")
    else:
        for r, ni, sd in zip(arms["row"], n, arms["sd"]):
            if ni < 2 or ni != int(ni):
                problems.append(f"row {r}: n must be a whole number >= 2; got {ni:g}")
            if not sd > 0:
                problems.append(f"row {r}: sd must be > 0; got {sd:g}")
    dup = arms.duplicated(["study", "treatment"], keep=False)
    for (s, t), g in arms[dup].groupby(["study", "treatment"], sort=False):
        problems.append(f"study {s!r} lists treatment {t!r} twice (rows {', '.join(map(str, g['row']))})")
    if problems:
        raise InputError(f"{source}: {len(problems)} problem(s) in the arm data", problems=problems)
    return arms


def _binary_contrast(measure: str, a: float, n1: float, c: float, n2: float, inc: float,
                     allstudies: bool) -> tuple[float, float, str | None]:
    """meta::metabin (inverse variance, ``addincr`` with the study's increment). Returns TE, seTE, reason-if-NA."""
    b, d = n1 - a, n2 - c
    if measure == "RD":
        te = a / n1 - c / n2
        var = (a + inc) * (b + inc) / (n1 + 2 * inc) ** 3 + (c + inc) * (d + inc) / (n2 + 2 * inc) ** 3
        return te, float(np.sqrt(var)), None if var > 0 else "zero variance"
    double_zero = a == 0 and c == 0
    all_events = a == n1 and c == n2
    if not allstudies and (double_zero or (measure == "OR" and all_events)):
        return np.nan, np.nan, "no events in both arms" if double_zero else "all events in both arms"
    if measure == "OR":
        cells = np.array([a, b, c, d], dtype=float) + inc
        if np.any(cells <= 0):
            return np.nan, np.nan, "zero cell without increment"
        return float(np.log(cells[0] * cells[3] / (cells[1] * cells[2]))), float(np.sqrt(np.sum(1 / cells))), None
    # RR, meta's default (RR.Cochrane = FALSE): increment added to events and to n once
    if a + inc <= 0 or c + inc <= 0:
        return np.nan, np.nan, "zero events without increment"
    te = np.log(((a + inc) / (n1 + inc)) / ((c + inc) / (n2 + inc)))
    k = 0.0 if all_events else inc
    var = 1 / (a + k) - 1 / (n1 + inc) + 1 / (c + k) - 1 / (n2 + inc) if (a + k) > 0 and (c + k) > 0 else np.nan
    if not var > 0:
        return np.nan, np.nan, "zero variance"
    return float(te), float(np.sqrt(var)), None


def pairwise(
    arms: pd.DataFrame,
    measure: str,
    *,
    incr: float = 0.5,
    allincr: bool = False,
    addincr: bool = False,
    allstudies: bool = False,
    source: str = "arms",
) -> Contrasts:
    """All within-study contrasts from arm-level data (netmeta ``pairwise()``; see module docstring).

    Arms keep their order within a study: ``treat1`` is the earlier-listed arm.
    """
    measure = measure.upper()
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    if incr < 0:
        raise InputError(f"incr must be >= 0; got {incr}")
    tab = _arm_table(arms, measure, source)
    notes: list[str] = []
    single = [s for s, g in tab.groupby("study", sort=False) if len(g) < 2]
    if single:
        notes.append(f"studies with a single arm left out (no comparison): {', '.join(single)}")
    tab = tab[~tab["study"].isin(single)]
    if tab.empty:
        raise InputError(f"{source}: no study has two or more arms; nothing to compare")
    rows: list[dict] = []
    if measure in BINARY:
        zero_any = tab.groupby("study", sort=False).apply(
            lambda g: bool(((g["events"] == 0) | (g["events"] == g["n"])).any()), include_groups=False)
        no_events = tab.groupby("study", sort=False)["events"].apply(lambda e: bool((e == 0).any()))
        if addincr:
            inc_study = {s: incr for s in zero_any.index}
        elif allincr:
            inc_study = {s: (incr if no_events.any() else 0.0) for s in zero_any.index}
        else:
            inc_study = {s: (incr if z else 0.0) for s, z in zero_any.items()}
        corrected = [s for s, v in inc_study.items() if v > 0]
        if corrected:
            notes.append(f"increment {incr:g} added to all cells of every comparison of studies with a zero cell "
                         f"(no events or all events in an arm): {', '.join(corrected)}")
        dropped: list[str] = []
        broken: dict[str, list[str]] = {}
        for study, g in tab.groupby("study", sort=False):
            narms = len(g)
            for (_, x), (_, y) in combinations(g.iterrows(), 2):
                te, se, why = _binary_contrast(measure, x["events"], x["n"], y["events"], y["n"],
                                               inc_study[study], allstudies)
                if why is not None:
                    label = f"{study}: {x['treatment']} vs {y['treatment']} ({why})"
                    if narms > 2:
                        broken.setdefault(study, []).append(label)
                    else:
                        dropped.append(label)
                    continue
                rows.append({"study": study, "treat1": x["treatment"], "treat2": y["treatment"], "TE": te,
                             "seTE": se, "event1": x["events"], "n1": x["n"], "event2": y["events"],
                             "n2": y["n"], "incr": inc_study[study]})
        if broken:
            raise InputError(
                f"{source}: multi-arm studies with a non-estimable {measure} comparison; a multi-arm study must "
                f"contribute all its comparisons (as in netmeta). Keep them with allstudies (--allstudies: the "
                f"increment is used for double-zero comparisons), use RD, or leave out the arm with no events",
                problems=[p for v in broken.values() for p in v])
        if dropped:
            notes.append(f"comparisons not estimable for {measure} and left out (set allstudies to keep them with "
                         f"the increment): {'; '.join(dropped)}")
    else:
        for study, g in tab.groupby("study", sort=False):
            n_total = float(g["n"].sum())
            sd = g["sd"].to_numpy()
            if measure == "SMD" and len(g) > 2:
                pooled = np.sqrt(np.sum((g["n"] - 1) * g["sd"] ** 2) / np.sum(g["n"] - 1))
                sd = np.full(len(g), pooled)
            recs = list(g.assign(sd_use=sd).itertuples(index=False))
            for x, y in combinations(recs, 2):
                if measure == "MD":
                    te = x.mean - y.mean
                    se = np.sqrt(x.sd_use**2 / x.n + y.sd_use**2 / y.n)
                else:
                    s_p = np.sqrt(((x.n - 1) * x.sd_use**2 + (y.n - 1) * y.sd_use**2) / (x.n + y.n - 2))
                    te = (x.mean - y.mean) / s_p
                    se = np.sqrt(1 / x.n + 1 / y.n + te**2 / (2 * n_total))  # Crippa & Orsini (2016), eq. 5
                rows.append({"study": study, "treat1": x.treatment, "treat2": y.treatment, "TE": float(te),
                             "seTE": float(se), "n1": x.n, "mean1": x.mean, "sd1": x.sd, "n2": y.n,
                             "mean2": y.mean, "sd2": y.sd})
        if measure == "SMD":
            notes.append("SMD is Cohen's d (SD pooled over all arms of a study), consistent within multi-arm "
                         "studies, with the variance of Crippa & Orsini (2016), as netmeta's pairwise()")
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise InputError(f"{source}: no estimable comparison left ({'; '.join(notes)})")
    return Contrasts(frame=frame, measure=measure, notes=notes)


def contrasts_from_frame(frame: pd.DataFrame, measure: str, *, source: str = "contrasts") -> Contrasts:
    """Contrast-level input: ``study, treatment1, treatment2, estimate, se`` (estimate = 1 minus 2)."""
    measure = measure.upper()
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    _check_columns(frame, ("study", "treatment1", "treatment2", "estimate", "se"), source)
    out = pd.DataFrame({"study": frame["study"].astype(str).str.strip(),
                        "treat1": frame["treatment1"].astype(str).str.strip(),
                        "treat2": frame["treatment2"].astype(str).str.strip(),
                        "TE": _num(frame, "estimate", source), "seTE": _num(frame, "se", source)})
    problems = []
    for i, r in out.iterrows():
        row = i + 2
        if r["treat1"] == r["treat2"]:
            problems.append(f"row {row}: treatment1 and treatment2 are both {r['treat1']!r}")
        if not (np.isfinite(r["seTE"]) and r["seTE"] > 0):
            problems.append(f"row {row}: se must be > 0; got {r['seTE']:g}")
        if not np.isfinite(r["TE"]):
            problems.append(f"row {row}: estimate must be finite; got {r['TE']:g}")
        if "" in (r["study"], r["treat1"], r["treat2"]):
            problems.append(f"row {row}: empty study or treatment")
    if problems:
        raise InputError(f"{source}: {len(problems)} problem(s) in the contrast data", problems=problems)
    return Contrasts(frame=out, measure=measure, notes=[])
