"""An attacker against small-cell protection (issue 14, point 2; rules in docs/privacy.md).

Hypothesis draws small study populations (many cells of 1..k-1 on purpose), the real code builds
what leaves the machine (results records with every kind of adjustment -- crude, matching,
stratification, IPTW -- made by the real ``adjust``; `analyze survival` output), and the attacker
derives every count it can from the published figures: counts themselves, differences of nested
counts (attrition steps, before/after each adjustment, analysed/at risk, at risk/events), one
matched arm from the other (1:k sets) or from the number of sets, an effective sample size as n,
percentage x N, risk x n, rate x person-years, KM step x number at risk and differences of numbers
at risk, and the log-rank (O-E)^2/E. Each derivation names the true cell it claims; the test fails
when a claim equals a true cell from 1 to k-1.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from follicle.privacy import is_small, protect_chain, protect_km
from follicle.run.adjust import adjust
from follicle.run.curves import curve_tables, run_curves
from follicle.run.estimate import OutcomeEstimate, estimate_outcome, outcome_frame
from follicle.run.pipeline import ComparisonRun, PropensityStep, adjusted_attrition
from follicle.run.results import comparison_record
from follicle.study.settings import AnalysisSettings
from follicle.study.spec import load_spec
from follicle.survival import kaplan_meier

SPEC = load_spec(__import__("pathlib").Path(__file__).resolve().parents[1] / "studies" / "jaki_neuropsych.yaml")
#: every kind of adjustment, the matching one primary (as an older spec's single matching block)
ADJUSTMENTS = ("matched", "crude", "strata", "iptw")


def _near_int(x: float) -> int | None:
    if x is None or not math.isfinite(x):
        return None
    r = round(x)
    return int(r) if abs(x - r) < 1e-6 * max(1.0, abs(x)) else None


class Attacker:
    """Collects (cell, value) claims and checks them against the true small cells."""

    def __init__(self, truth: dict, k: int) -> None:
        self.truth, self.k, self.hits = truth, k, []

    def claim(self, cell, value) -> None:
        v = _near_int(value) if isinstance(value, float) else value
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            return
        true = self.truth.get(cell)
        if true is not None and is_small(true, self.k) and int(v) == int(true):
            self.hits.append((cell, int(v)))


@st.composite
def comparisons(draw):
    k = draw(st.sampled_from([5, 10]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_t, n_c = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    t = np.r_[np.ones(n_t, int), np.zeros(n_c, int)]
    n = len(t)
    covs = pd.DataFrame({f"c{j}": (rng.random(n) < draw(st.sampled_from([0.02, 0.1, 0.5, 0.93]))).astype(float)
                         for j in range(3)})
    covs["age"] = rng.normal(40, 10, n).round()
    # a propensity score that overlaps more or less, so matching leaves a few people or many unmatched
    # and strata hold one arm or both
    spread = draw(st.sampled_from([0.3, 1.0, 3.0]))
    ps = 1 / (1 + np.exp(-(spread * (t - 0.5) + rng.normal(0, 1, n))))
    analysis = AnalysisSettings(adjustments=[
        {"kind": "matching", "name": "matched", "caliper": draw(st.sampled_from([0.05, 0.2, 1.0])),
         "ratio": draw(st.sampled_from([1, 1, 2])), "order": draw(st.sampled_from(["closest", "random"]))},
        {"kind": "crude", "name": "crude"},
        {"kind": "stratification", "name": "strata", "n_strata": draw(st.integers(2, 5))},
        {"kind": "iptw", "name": "iptw", "estimand": draw(st.sampled_from(["ate", "att"])),
         "truncate_percentile": draw(st.sampled_from([None, 5.0]))},
    ])
    drops = [draw(st.integers(0, 25)) for _ in range(4)]
    in_both = [draw(st.integers(0, 12)), draw(st.integers(0, 12))]
    no_tar = [draw(st.integers(0, 12)), draw(st.integers(0, 12))]
    outcomes = []
    for o in range(3):
        prior = rng.random(n) < draw(st.sampled_from([0.0, 0.02, 0.1]))
        event = rng.random(n) < draw(st.sampled_from([0.02, 0.1, 0.5, 0.97]))
        time = rng.uniform(1, 2000, n)
        outcomes.append((prior, event, time))
    return k, t, covs, ps, analysis, drops, in_both, no_tar, outcomes


def _build(k, t, covs, ps, analysis, drops, in_both, no_tar, outcomes):
    truth: dict = {}
    before = {"target": int((t == 1).sum()), "comparator": int((t == 0).sum())}
    rows = []
    for a, (arm, cohort) in enumerate((("target", "jaki"), ("comparator", "other"))):
        overlap = before[arm] + no_tar[a]
        first = overlap + in_both[a]
        chain = list(np.cumsum([0] + drops[::-1]))[::-1]
        counts = [first + c for c in chain]
        for i, c in enumerate(counts):
            rows.append({"cohort": cohort, "step_index": i, "step": f"s{i}", "description": "", "persons": c})
        truth[("cohort", arm)] = counts
        truth[("comp", arm)] = [first, overlap]
    comp_rows = [("target", truth[("comp", "target")][0]), ("comparator", truth[("comp", "comparator")][0]),
                 ("in_both", in_both[0]), ("overlap_target", truth[("comp", "target")][1]),
                 ("overlap_comparator", truth[("comp", "comparator")][1]),
                 ("time_at_risk", before["target"] + before["comparator"])]
    for i, (step, c) in enumerate(comp_rows):
        rows.append({"cohort": "cmp", "step_index": i, "step": step, "description": "", "persons": c})
    spec = SPEC.model_copy(update={"min_cell_count": k, "analysis": analysis})
    X = covs.to_numpy()
    adjusted = {a.name: adjust(a, t, ps, X, list(covs.columns), covs, threshold=0.1) for a in analysis.adjustments}
    attrition = adjusted_attrition(spec, "cmp", pd.DataFrame(rows), adjusted)
    step = PropensityStep(ps=ps, preference=ps, auc=0.5, equipoise=1.0, n_covariates=covs.shape[1])
    estimates: dict[str, list[OutcomeEstimate]] = {}
    for name, adj in adjusted.items():
        analysed = adj.weights > 0
        after = {"target": int((analysed & (t == 1)).sum()), "comparator": int((analysed & (t == 0)).sum())}
        ests = []
        for o, (prior, event, time) in enumerate(outcomes):
            nums = {}
            for arm, v in (("target", 1), ("comparator", 0)):
                at = analysed & ~prior & (t == v)
                e = int((event & at).sum())
                nn = int(at.sum())
                py = float(time[at].sum()) / 365.25
                nums |= {f"n_{arm}": nn, f"events_{arm}": e, f"person_years_{arm}": py,
                         f"mean_followup_days_{arm}": float(time[at].mean()) if nn else None,
                         f"risk_{arm}": e / nn if nn else None, f"ir_per_1000py_{arm}": 1000 * e / py if py else None}
                truth[("n_o", name, o, arm)] = nn
                truth[("events", name, o, arm)] = e
                truth[("nonevents", name, o, arm)] = nn - e
                truth[("prior", name, o, arm)] = int((analysed & prior & (t == v)).sum())
            nums |= {"hr": 1.2, "hr_ci_low": 0.8, "hr_ci_high": 1.8, "log_hr": 0.18, "se_log_hr": 0.2, "p": 0.4,
                     "rd": 0.01, "rr": 1.1, "logrank_chisq": 0.5, "mdrr": 2.0}
            ests.append(OutcomeEstimate(f"o{o}", False, nums))
        estimates[name] = ests
        cells = adj.table1_cells
        for j, c in enumerate(covs.columns):
            for arm in ("target", "comparator"):
                xb, xa = cells.at[j, f"{arm}_before"], cells.at[j, f"{arm}_after"]
                truth[("x", c, arm, "before")] = int(xb)
                truth[("x", name, c, arm, "after")] = int(xa)
                truth[("nx", c, arm, "before")] = int(before[arm] - xb)
                truth[("nx", name, c, arm, "after")] = int(after[arm] - xa)
                truth[("unmatched_x", name, c, arm)] = int(xb - xa)
                truth[("unmatched_nx", name, c, arm)] = int((before[arm] - xb) - (after[arm] - xa))
        for arm in ("target", "comparator"):
            truth[("unmatched", name, arm)] = before[arm] - after[arm]
            truth[("after", name, arm)] = after[arm]
    run = ComparisonRun("cmp", "jaki", "other", attrition, step, t, adjusted, estimates,
                        {a: [] for a in adjusted}, {a: None for a in adjusted}, "matched")
    return run, truth, before


def _attack(rec: dict, truth: dict, k: int, ratio: int) -> list:
    atk = Attacker(truth, k)
    arm_of = {"jaki": "target", "other": "comparator"}
    att = rec["attrition"]
    adjustments = {a["name"]: a for a in rec["adjustments"]}
    for arm in ("target", "comparator"):
        shared = [r["count"] for r in att if arm_of.get(r["cohort"]) == arm]
        shared += [r["count"] for r in att if r["cohort"] == "cmp" and "adjustment" not in r
                   and (r["step"] == arm or r["step"].endswith("_" + arm))]
        shared += [rec[f"n_{arm}_before"]]
        nb = rec[f"n_{arm}_before"]
        for name, adj in adjustments.items():
            # every drop between two shown steps of the chain that ends in this adjustment
            steps = [r["count"] for r in att if r.get("adjustment") == name and r["step"].split("_")[1] == arm]
            values = shared + steps + [adj[f"n_{arm}"], adj["table1_n"][f"{arm}_after"]]
            na = adj[f"n_{arm}"]
            shown = [(i, v) for i, v in enumerate(values) if isinstance(v, int)]
            for x, (i, a) in enumerate(shown):
                for j, b in shown[x + 1:]:
                    atk.claim(("drop", name, arm, i, j), a - b)
            if isinstance(nb, int) and isinstance(na, int):
                atk.claim(("unmatched", name, arm), nb - na)
            atk.claim(("after", name, arm), na)
            # matched sets of 1:k hold one target each and k comparators: one arm gives the other back
            if adj["adjustment"] == "matching":
                other = "comparator" if arm == "target" else "target"
                n_other = adj[f"n_{other}"]
                sets = adj["details"].get("matched_sets")
                for guess in ([n_other * ratio if arm == "comparator" else n_other / ratio] if isinstance(n_other, int)
                              else []) + ([sets * (ratio if arm == "comparator" else 1)] if isinstance(sets, int) else []):
                    atk.claim(("after", name, arm), guess)
                    if isinstance(nb, int):
                        atk.claim(("unmatched", name, arm), nb - guess)
            ess = adj["details"].get(f"ess_{arm}")
            if ess is not None and isinstance(nb, int):
                atk.claim(("after", name, arm), ess)  # ESS = n when the weights are equal
                atk.claim(("unmatched", name, arm), nb - ess)
            for o in rec["outcomes"]:
                e = next(e for e in o["estimates"] if e["name"] == name)
                oi = int(o["outcome"][1:])
                n_o, e_o = e[f"n_{arm}"], e[f"events_{arm}"]
                if isinstance(n_o, int) and isinstance(na, int):
                    atk.claim(("prior", name, oi, arm), na - n_o)
                if isinstance(n_o, int) and isinstance(e_o, int):
                    atk.claim(("nonevents", name, oi, arm), n_o - e_o)
                atk.claim(("n_o", name, oi, arm), n_o)
                atk.claim(("events", name, oi, arm), e_o)
                # guess that nobody had the outcome before: the number at risk is then the analysed count,
                # of this arm and (1:k matched sets) of the other
                if isinstance(n_o, int):
                    atk.claim(("after", name, arm), n_o)
                    if isinstance(nb, int):
                        atk.claim(("unmatched", name, arm), nb - n_o)
                    if adj["adjustment"] == "matching":
                        other = "comparator" if arm == "target" else "target"
                        nb_other = rec[f"n_{other}_before"]
                        guess = n_o * ratio if other == "comparator" else n_o / ratio
                        atk.claim(("after", name, other), guess)
                        if isinstance(nb_other, int):
                            atk.claim(("unmatched", name, other), nb_other - guess)
                if e.get(f"risk_{arm}") is not None and isinstance(n_o, int):
                    atk.claim(("events", name, oi, arm), e[f"risk_{arm}"] * n_o)
                    atk.claim(("nonevents", name, oi, arm), n_o - e[f"risk_{arm}"] * n_o)
                if e.get(f"risk_{arm}") and isinstance(e_o, int):
                    atk.claim(("n_o", name, oi, arm), e_o / e[f"risk_{arm}"])
                if e.get(f"ir_per_1000py_{arm}") is not None and e.get(f"person_years_{arm}") is not None:
                    atk.claim(("events", name, oi, arm), e[f"ir_per_1000py_{arm}"] * e[f"person_years_{arm}"] / 1000)
                if e.get(f"mean_followup_days_{arm}") and e.get(f"person_years_{arm}") is not None:
                    atk.claim(("n_o", name, oi, arm), e[f"person_years_{arm}"] * 365.25 / e[f"mean_followup_days_{arm}"])
            for row in adj["table1"]:
                c = row["covariate"].split(" ")[0]
                if c == "age":
                    continue
                got = {}
                for when, n_shown in (("before", nb), ("after", na)):
                    pct = row[f"{arm}_{when}"]
                    if pct is not None and isinstance(n_shown, int):
                        x = pct * n_shown / 100
                        got[when] = x
                        cell = ("x", c, arm, "before") if when == "before" else ("x", name, c, arm, "after")
                        atk.claim(cell, x)
                        atk.claim(("nx",) + cell[1:], n_shown - x)
                if len(got) == 2:
                    atk.claim(("unmatched_x", name, c, arm), got["before"] - got["after"])
                    atk.claim(("unmatched_nx", name, c, arm), (nb - got["before"]) - (na - got["after"]))
            for row in adj["table1"] + adj["balance"]:
                for when in ("before", "after"):
                    if row.get(f"smd_{when}") is not None and f"target_{when}" in row:
                        # an SMD shown beside a withheld percentage would give the percentage back
                        assert row[f"target_{when}"] is not None and row[f"comparator_{when}"] is not None, row
    return atk.hits


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(comparisons())
def test_no_published_figure_gives_back_a_small_cell(drawn):
    """Every adjustment (crude, matching, stratification, IPTW): its attrition branch, arm sizes,
    Table 1 and balance, details (matched sets, effective sample sizes) and estimates' counts."""
    k, analysis = drawn[0], drawn[4]
    run, truth, before = _build(*drawn)
    ratio = next(a.ratio for a in analysis.adjustments if a.kind == "matching")
    # the true drops of the nested chains, as the attacker would label them
    for name, adj in run.adjusted.items():
        for arm in ("target", "comparator"):
            n_after = truth[("after", name, arm)]
            steps = [n_after] if adj.kind != "crude" else []
            true_chain = (list(truth[("cohort", arm)]) + list(truth[("comp", arm)]) + [before[arm]] + steps
                          + [n_after, n_after])
            for i in range(len(true_chain)):
                for j in range(i + 1, len(true_chain)):
                    truth[("drop", name, arm, i, j)] = true_chain[i] - true_chain[j]
    spec = SPEC.model_copy(update={"min_cell_count": k, "analysis": analysis})
    rec = json.loads(json.dumps(comparison_record(run, spec), default=float))
    assert [a["name"] for a in rec["adjustments"]] == list(ADJUSTMENTS)
    hits = _attack(rec, truth, k, ratio)
    assert not hits, hits
    # and every count that is shown is 0 or >= k
    for r in rec["attrition"]:
        assert r["count"] is None or isinstance(r["count"], str) or not is_small(r["count"], k)
    # the attrition continues through every adjustment that selects people, per arm
    steps = {(r.get("adjustment"), r["step"]) for r in rec["attrition"] if r["cohort"] == "cmp"}
    for name, prefix in (("matched", "matched"), ("strata", "stratified_"), ("iptw", "weighted_")):
        assert {s for a, s in steps if a == name} and all(s.startswith(prefix) for a, s in steps if a == name)
    assert not {s for a, s in steps if a == "crude"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_adjustments_curves_and_histograms_are_built_from_rounded_counts(seed):
    """The Kaplan-Meier tables (crude and matching: the unweighted designs) and the preference-score
    histograms (before adjustment and per PS adjustment) of every adjustment come from the
    protected counts: each curve is exactly :func:`protect_km` of that adjustment's own curve, each
    number at risk and histogram count a multiple of k."""
    k = 10
    rng = np.random.default_rng(seed)
    n = 400
    t = (rng.random(n) < 0.45).astype(int)
    covs = pd.DataFrame({"c0": (rng.random(n) < 0.3).astype(float), "age": rng.normal(50, 10, n).round()})
    ps = 1 / (1 + np.exp(-(0.8 * (t - 0.5) + rng.normal(0, 1, n))))
    analysis = AnalysisSettings(adjustments=[{"kind": "matching", "name": "matched", "caliper": 0.2},
                                             {"kind": "crude", "name": "crude"},
                                             {"kind": "stratification", "name": "strata"},
                                             {"kind": "iptw", "name": "iptw"}])
    spec = SPEC.model_copy(update={"min_cell_count": k, "analysis": analysis})
    adjusted = {a.name: adjust(a, t, ps, covs.to_numpy(), list(covs.columns), covs, threshold=0.1)
                for a in analysis.adjustments}
    table = pd.DataFrame({"person_id": np.arange(n), "treatment": t, "tar_start_day": 1,
                          "o0_event": rng.random(n) < 0.3, "o0_days": rng.integers(1, 1500, n), "o0_prior": False})
    estimates = {a.name: [estimate_outcome(outcome_frame(table, "o0", adjusted[a.name]), "o0", negative_control=False,
                                           settings=analysis.outcome_model, adjustment=a, labels=("jaki", "other"),
                                           risk_window=None)] for a in analysis.adjustments}
    attrition = pd.DataFrame(columns=["cohort", "step_index", "step", "description", "persons"])
    run = ComparisonRun("cmp", "jaki", "other", attrition, PropensityStep(ps, ps, 0.5, 1.0, 2), t, adjusted, estimates,
                        {a: [] for a in adjusted}, {a: None for a in adjusted}, "matched")
    results = {"comparisons": [comparison_record(run, spec)]}
    tabs = curve_tables(run_curves([run], results, k), k)
    km, risk = tabs["km"], tabs["km_at_risk"]
    assert set(km["adjustment"]) == {"matched", "crude"}  # weighted and stratified designs draw no KM curve
    rounded = []
    for (name, arm), steps in km.groupby(["adjustment", "arm"]):
        raw = estimates[name][0].curves[arm].rename(columns={"at_risk": "n_risk"})
        safe = protect_km(raw, k)
        safe = safe[safe["n_risk"] >= k]
        expected = safe[safe["survival"].diff().fillna(-1.0) != 0]
        assert np.allclose(steps.sort_values("time")["survival"], expected["survival"]), (name, arm)
        raw_steps = raw[raw["n_event"] > 0]["survival"].to_numpy()
        rounded.append(len(raw_steps) != len(steps) or not np.allclose(np.sort(raw_steps), np.sort(steps["survival"])))
    assert any(rounded)  # what is published is not the exact curve
    assert all(v == "0" or (v.isdigit() and int(v) % k == 0) for v in risk["at_risk"]), risk
    pref = tabs["preference"]
    assert set(pref["adjustment"].dropna()) == {"matched", "strata", "iptw"} and pref["adjustment"].isna().any()
    assert (pref["count"] % k == 0).all()
    for name in ("matched", "strata"):  # the people analysed, unweighted
        rows = pref[(pref["adjustment"] == name) & (pref["arm"] == "jaki")]
        assert rows["count"].sum() >= adjusted[name].n_target and rows["count"].sum() - adjusted[name].n_target < k * 20


def test_the_issue_examples_are_closed():
    """1.84% of 489 = 9; attrition drops of 5 and 8 (issue 14)."""
    assert protect_chain([500, 495, 487, 400], 10) == [500, None, 487, 400]  # drops 13 and 87 remain
    assert protect_chain([500, 489, 480], 10) == [500, 489, None]
    from follicle.privacy import proportion_publishable
    assert not proportion_publishable(9, 489, 10)
    assert proportion_publishable(10, 489, 10)


# --------------------------------------------------------------------------------------------
# Kaplan-Meier and `analyze survival`


@st.composite
def survival_data(draw):
    k = draw(st.sampled_from([5, 10]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 120))
    time = rng.integers(1, draw(st.sampled_from([5, 30, 400])), n).astype(float)
    event = (rng.random(n) < draw(st.sampled_from([0.05, 0.3, 0.9]))).astype(int)
    group = rng.integers(0, 2, n)
    return k, time, event, group


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(survival_data())
def test_km_steps_and_numbers_at_risk_only_give_multiples_of_k(drawn):
    k, time, event, _ = drawn
    km = kaplan_meier(time, event)
    safe = protect_km(km.table, k)
    for col in ("n_risk", "n_event", "n_censor"):
        assert (safe[col] % k == 0).all()
    s_prev, n_prev = 1.0, None
    for row in safe.itertuples():
        step = (1 - row.survival / s_prev) * row.n_risk if s_prev > 0 else 0.0
        v = _near_int(step)
        assert v is None or v % k == 0, (step, row)  # step x at-risk: a multiple of k
        if n_prev is not None:
            assert (n_prev - row.n_risk) % k == 0
        s_prev, n_prev = row.survival, row.n_risk
    # the curve is a function of the published counts only (nothing finer hides in it)
    d, nr = safe["n_event"].to_numpy(float), safe["n_risk"].to_numpy(float)
    assert np.allclose(safe["survival"], np.cumprod(1 - np.minimum(d, nr) / nr))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(survival_data())
def test_analyze_survival_output_gives_back_no_small_cell(tmp_path_factory, drawn):
    from follicle.cli.analyze_survival import protect, run_survival

    k, time, event, group = drawn
    path = tmp_path_factory.mktemp("s") / "d.csv"
    pd.DataFrame({"time": time, "event": event, "group": group}).to_csv(path, index=False)
    try:
        raw = run_survival(path, "time", "event", "group", [], "efron", 0.95, "days", None)
    except Exception as exc:  # a degenerate draw the command refuses with a message
        assert type(exc).__name__ in ("InputError",), exc
        return
    res = protect(raw, k)
    truth = {}
    for g in (0, 1):
        m = group == g
        truth[("n", g)], truth[("events", g)] = int(m.sum()), int(event[m].sum())
        truth[("nonevents", g)] = int(m.sum() - event[m].sum())
        for tt in np.unique(time[m]):
            truth[("d_at", g, float(tt))] = int(event[m & (time == tt)].sum())
    atk = Attacker(truth, k)
    for row in res["incidence_per_1000_person_years"]:
        g = int(row["group"])
        atk.claim(("n", g), row["n"])
        atk.claim(("events", g), row["events"])
        if row["rate"] is not None and row["person_years"] is not None:
            atk.claim(("events", g), row["rate"] * row["person_years"] / 1000)
        if isinstance(row["n"], int) and isinstance(row["events"], int):
            atk.claim(("nonevents", g), row["n"] - row["events"])
    for row in res["followup"]:
        g = int(row["group"])
        if row["mean"] and row["person_time"] is not None:
            atk.claim(("n", g), row["person_time"] / row["mean"])
    for km in res["kaplan_meier"]:
        g = int(km["group"])
        s_prev = 1.0
        for r in km["curve"]:
            if s_prev > 0:
                atk.claim(("d_at", g, float(r["time"])), (1 - r["survival"] / s_prev) * r["n_risk"])
            atk.claim(("d_at", g, float(r["time"])), r["n_event"])
            s_prev = r["survival"]
    lr = res.get("logrank", {})
    for row in lr.get("groups", []):
        g = int(row["group"])
        atk.claim(("events", g), row["observed"])
        if row.get("o_minus_e_sq_over_e") is not None and row.get("expected"):
            root = math.sqrt(row["o_minus_e_sq_over_e"] * row["expected"])
            atk.claim(("events", g), row["expected"] + root)
            atk.claim(("events", g), row["expected"] - root)
    assert not atk.hits, atk.hits


def test_the_attacker_finds_leaks_in_count_only_suppression(tmp_path):
    """The attack is not toothless: against the old rule (counts replaced by "<10", figures left
    as they were) it recovers small cells from the KM steps and the rate."""
    from follicle.cli._common import to_json
    from follicle.cli.analyze_survival import run_survival
    from follicle.privacy import suppress_counts

    rng = np.random.default_rng(1)
    time = rng.integers(1, 300, 80).astype(float)
    event = (rng.random(80) < 0.08).astype(int)
    group = np.r_[np.zeros(40, int), np.ones(40, int)]
    path = tmp_path / "d.csv"
    pd.DataFrame({"time": time, "event": event, "group": group}).to_csv(path, index=False)
    naive = suppress_counts(json.loads(to_json(run_survival(path, "time", "event", "group", [], "efron", 0.95))),
                            {"n", "events", "n_risk", "n_event", "n_censor", "observed"}, 10)
    truth = {("events", g): int(event[group == g].sum()) for g in (0, 1)}
    for g in (0, 1):
        m = group == g
        for tt in np.unique(time[m]):
            truth[("d_at", g, float(tt))] = int(event[m & (time == tt)].sum())
    atk = Attacker(truth, 10)
    for row in naive["incidence_per_1000_person_years"]:
        atk.claim(("events", int(row["group"])), row["rate"] * row["person_years"] / 1000)
    for km in naive["kaplan_meier"]:
        s_prev = 1.0
        for r in km["curve"]:
            if isinstance(r["n_risk"], int) and s_prev > 0:  # step x number at risk
                atk.claim(("d_at", int(km["group"]), float(r["time"])), (1 - r["survival"] / s_prev) * r["n_risk"])
            s_prev = r["survival"]
        assert all(r["n_event"] in (0, "<10") or r["n_event"] >= 10 for r in km["curve"])  # counts were hidden
    cells = {c[0] for c, _ in atk.hits}
    assert cells == {"events", "d_at"}, atk.hits
