"""The bundled study written plainly with pandas + statsmodels + lifelines: the peer of bench_study.py.

What an analyst would write without Follicle: read the CDM tables from the DuckDB file into pandas,
build the cohorts with merges and groupbys following the same spec rules as follicle.study.cohorts
(first exposure, observation period, prior observation, washout, >= 2 exposure days, required and
excluded history, first-exposure overlap rule, time at risk censored at observation end and death),
fit a logistic propensity model (statsmodels), greedy 1:1 nearest-neighbour matching on the logit
PS with a 0.1 pooled-SD caliper in random order, then per outcome lifelines' Cox model with
cluster-robust SEs (pairs), Kaplan-Meier, log-rank and the PH test, crude risks, the E-value, and a
normal empirical null on the negative controls. Results are written as JSON + Parquet (no HTML).

Concept sets are resolved with Follicle's vocabulary resolver (not part of the comparison).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test, proportional_hazard_test
from scipy import optimize, stats

from follicle.cdm.connect import connect
from follicle.study.spec import load_spec
from follicle.vocab.resolve import resolve_concept_sets

COLUMNS = {  # domain -> (table, concept, source concept, source value, start, end)
    "condition": ("condition_occurrence", "condition_concept_id", "condition_source_concept_id",
                  "condition_source_value", "condition_start_date", "condition_end_date"),
    "drug": ("drug_exposure", "drug_concept_id", "drug_source_concept_id", "drug_source_value",
             "drug_exposure_start_date", "drug_exposure_end_date"),
}
FEMALE = 8532


def clock() -> np.ndarray:
    """(wall, CPU) seconds now."""
    return np.array([time.perf_counter(), time.process_time()])


def days(col: pd.Series) -> np.ndarray:
    """Dates as whole days since 1970 (NaT -> a far-future day)."""
    v = pd.to_datetime(col).to_numpy().astype("datetime64[D]")
    out = v.astype(np.int64)
    out[np.isnat(v)] = 10**7
    return out


def read_domain(con: duckdb.DuckDBPyConnection, domain: str) -> pd.DataFrame:
    table, concept, src, sv, start, end = COLUMNS[domain]
    route = ", route_concept_id" if domain == "drug" else ""
    df = con.execute(f"SELECT person_id, {concept}, {src}, {sv}, {start}, {end}{route} FROM {table}").df()
    df.columns = ["person_id", "concept_id", "source_concept_id", "source_value", "start", "end"] + (
        ["route"] if domain == "drug" else [])
    df["source_value"] = df["source_value"].astype("string").str.upper().str.replace(".", "", regex=False)
    df["start"] = days(df["start"])
    return df


def set_mask(df: pd.DataFrame, rs) -> np.ndarray:
    def match(ids, src, pats) -> np.ndarray:
        m = np.zeros(len(df), bool)
        if ids:
            m |= df["concept_id"].isin(list(ids)).to_numpy()
        if src:
            m |= df["source_concept_id"].isin(list(src)).to_numpy()
        prefixes = tuple(p.code for p in pats if p.prefix)
        exact = [p.code for p in pats if not p.prefix]
        if prefixes:
            m |= df["source_value"].str.startswith(prefixes).fillna(False).to_numpy(dtype=bool)
        if exact:
            m |= df["source_value"].isin(exact).fillna(False).to_numpy(dtype=bool)
        return m

    m = match(rs.concept_ids, rs.source_concept_ids, rs.source_patterns)
    ex = match(rs.excluded_concept_ids, rs.excluded_source_concept_ids, rs.excluded_source_patterns)
    return m & ~ex


def in_window(ev_day: np.ndarray, anchor: np.ndarray, window) -> np.ndarray:
    ok = np.ones(len(ev_day), bool)
    if window.start is not None:
        ok &= ev_day >= anchor + window.start
    if window.end is not None:
        ok &= ev_day <= anchor + window.end
    return ok


def hits(people: pd.DataFrame, events: pd.DataFrame, window) -> pd.Index:
    """person_ids of *people* (person_id, index) with an event in *window* around their index day."""
    j = people[["person_id", "index"]].merge(events[["person_id", "start"]], on="person_id")
    return pd.Index(j.loc[in_window(j["start"].to_numpy(), j["index"].to_numpy(), window), "person_id"].unique())


class PlainStudy:
    def __init__(self, db: str, study: str, steps: dict[str, list[float]]) -> None:
        self.steps = steps
        self.spec = load_spec(study)
        t0 = clock()
        icon = connect(db, read_only=True)
        self.resolved = resolve_concept_sets(self.spec.concept_sets, icon)
        icon.disconnect()
        t1 = clock()
        steps["concept set resolution (follicle.vocab)"] = list(t1 - t0)
        con = duckdb.connect(db, read_only=True)
        self.person = con.execute("SELECT person_id, year_of_birth, gender_concept_id FROM person").df()
        op = con.execute("SELECT person_id, observation_period_start_date s, observation_period_end_date e "
                         "FROM observation_period").df()
        self.op = pd.DataFrame({"person_id": op["person_id"], "op_start": days(op["s"]), "op_end": days(op["e"])})
        death = con.execute("SELECT person_id, death_date FROM death").df()
        death["death"] = days(death["death_date"])
        self.death = death.groupby("person_id", as_index=False)["death"].min()
        domains = {rs.domain for rs in self.resolved.values() if rs.domain in COLUMNS}
        self.domains = {d: read_domain(con, d) for d in domains}
        con.close()
        steps["read CDM tables into pandas"] = list(clock() - t1)
        self._events: dict[str, pd.DataFrame] = {}
        self._cohorts: dict[str, pd.DataFrame] = {}

    def events(self, name: str) -> pd.DataFrame:
        if name not in self._events:
            rs = self.resolved[name]
            df = self.domains[rs.domain]
            self._events[name] = df[set_mask(df, rs)]
        return self._events[name]

    def cohort(self, name: str) -> pd.DataFrame:
        if name in self._cohorts:
            return self._cohorts[name]
        cs = self.spec.cohorts[name]
        ent = self.events(cs.entry.concept_set)
        if cs.route is not None:
            r = ent["route"]
            unknown = (r.isna() | (r == 0)).to_numpy()
            keep = np.ones(len(ent), bool)
            if cs.route.include:
                keep &= r.isin(cs.route.include).to_numpy()
            if cs.route.exclude:
                keep &= ~r.isin(cs.route.exclude).to_numpy()
            keep = (keep | unknown) if cs.route.keep_unknown else (keep & ~unknown)
            ent = ent[keep]
        first = ent.groupby("person_id", as_index=False)["start"].min().rename(columns={"start": "index"})
        j = first.merge(self.op, on="person_id")
        j = j[(j["op_start"] <= j["index"]) & (j["op_end"] >= j["index"])]
        obs = j.groupby("person_id", as_index=False).agg(obs_start=("op_start", "min"), obs_end=("op_end", "max"))
        t = first.merge(obs, on="person_id", how="left").merge(self.person, on="person_id", how="left")
        t["age"] = pd.to_datetime(t["index"], unit="D").dt.year - t["year_of_birth"]
        ok = t["year_of_birth"].notna() & t["obs_start"].notna()
        prior = max(cs.prior_observation_days, cs.washout_days or 0)
        if prior:
            ok &= (t["index"] - t["obs_start"]) >= prior
        if cs.washout_days is not None:
            from follicle.study.spec import Window

            for set_name in cs.washout_concept_sets or [cs.entry.concept_set]:
                # the entry set's own washout uses the route-filtered exposures (new user of that route)
                ev = ent if set_name == cs.entry.concept_set else self.events(set_name)
                ok &= ~t["person_id"].isin(hits(first, ev, Window(start=-cs.washout_days, end=-1)))
        if cs.min_exposures is not None:
            j = first.merge(ent[["person_id", "start"]], on="person_id")
            j = j[in_window(j["start"].to_numpy(), j["index"].to_numpy(), cs.min_exposures.window)]
            n = j.groupby("person_id")["start"].nunique()
            ok &= t["person_id"].map(n).fillna(0).to_numpy() >= cs.min_exposures.count
        for crit in cs.require:
            ok &= t["person_id"].isin(hits(first, self.events(crit.concept_set), crit.window))
        if cs.age is not None:
            if cs.age.min is not None:
                ok &= t["age"] >= cs.age.min
            if cs.age.max is not None:
                ok &= t["age"] <= cs.age.max
        for crit in cs.exclude:
            ok &= ~t["person_id"].isin(hits(first, self.events(crit.concept_set), crit.window))
        self._cohorts[name] = t[ok.to_numpy()].reset_index(drop=True)
        return self._cohorts[name]

    def population(self, comparison: str) -> pd.DataFrame:
        comp = self.spec.comparisons[comparison]
        t, c = self.cohort(comp.target), self.cohort(comp.comparator)
        if comp.overlap == "exclude":
            t2, c2 = t[~t["person_id"].isin(c["person_id"])], c[~c["person_id"].isin(t["person_id"])]
        else:
            ci = c.set_index("person_id")["index"]
            ti = t.set_index("person_id")["index"]
            t2 = t[~(t["index"] >= t["person_id"].map(ci).fillna(np.inf))]
            c2 = c[~(c["index"] >= c["person_id"].map(ti).fillna(np.inf))]
        pop = pd.concat([t2.assign(treatment=1), c2.assign(treatment=0)], ignore_index=True)
        tar = self.spec.time_at_risk
        pop = pop.merge(self.death, on="person_id", how="left")
        anchor = {"index": pop["index"], "cohort_end": pop["index"]}  # cohort_end not used by this study
        pop["tar_start"] = anchor[tar.start_anchor] + tar.start_offset
        end = anchor[tar.end_anchor] + tar.end_offset
        if tar.censor_at_observation_end:
            end = np.minimum(end, pop["obs_end"].fillna(10**7))
        if tar.censor_at_death:
            end = np.minimum(end, pop["death"].fillna(10**7))
        if tar.max_follow_up_days is not None:
            end = np.minimum(end, pop["tar_start"] + tar.max_follow_up_days)
        pop["tar_end"] = end
        pop = pop[pop["tar_end"] >= pop["tar_start"]].sort_values("person_id").reset_index(drop=True)
        cov = self.spec.covariates
        if cov.demographics:
            pop["cov_age"] = pop["age"].astype(float)
            pop["cov_female"] = (pop["gender_concept_id"] == FEMALE).astype(float)
        for name in cov.concept_sets:
            pop[f"cov_{name}"] = pop["person_id"].isin(hits(pop, self.events(name), cov.window)).astype(float)
        return pop

    def outcome(self, pop: pd.DataFrame, name: str) -> pd.DataFrame:
        """time, event, prior of outcome *name* per row of *pop*."""
        d = self.spec.outcomes[name]
        j = pop[["person_id", "tar_start", "tar_end"]].merge(self.events(d.concept_set)[["person_id", "start"]],
                                                            on="person_id")
        tar = j[(j["start"] >= j["tar_start"]) & (j["start"] <= j["tar_end"])]
        first = tar.groupby("person_id")["start"].min()
        before = j["start"] < j["tar_start"]
        if d.prior_lookback_days is not None:
            before &= j["start"] >= j["tar_start"] - d.prior_lookback_days
        prior = pop["person_id"].isin(j.loc[before, "person_id"])
        date = pop["person_id"].map(first)
        return pd.DataFrame({"event": date.notna().to_numpy(), "time": (date.fillna(pop["tar_end"]) - pop["index"]).to_numpy(),
                             "prior": prior.to_numpy()})


def greedy_match(ps: np.ndarray, t: np.ndarray, caliper: float, seed: int) -> np.ndarray:
    """1:1 greedy nearest-neighbour matching on logit(PS), treated in random order; set id per row (-1 unmatched)."""
    lg = np.log(ps) - np.log1p(-ps)
    width = caliper * math.sqrt((np.var(lg[t == 1], ddof=1) + np.var(lg[t == 0], ddof=1)) / 2)
    ctrl = np.flatnonzero(t == 0)
    ctrl = ctrl[np.argsort(lg[ctrl], kind="stable")]
    cv = lg[ctrl]
    used = np.zeros(len(ctrl), bool)
    sets = np.full(len(ps), -1)
    for s, i in enumerate(np.random.default_rng(seed).permutation(np.flatnonzero(t == 1))):
        x, k = lg[i], np.searchsorted(cv, lg[i])
        best, dist = -1, width
        j = k - 1
        while j >= 0 and x - cv[j] <= dist:
            if not used[j]:
                best, dist = j, x - cv[j]
                break
            j -= 1
        j = k
        while j < len(cv) and cv[j] - x <= dist:
            if not used[j]:
                best, dist = j, cv[j] - x
                break
            j += 1
        if best >= 0:
            used[best] = True
            sets[i] = sets[ctrl[best]] = s
    return sets


def estimate(df: pd.DataFrame) -> dict:
    """Cox (cluster-robust), KM, log-rank, PH test, crude risks and E-value of one matched outcome frame."""
    t, time_, ev = df["treatment"].to_numpy(), df["time"].to_numpy(), df["event"].to_numpy()
    out = {"n_target": int((t == 1).sum()), "n_comparator": int((t == 0).sum()),
           "events_target": int(ev[t == 1].sum()), "events_comparator": int(ev[t == 0].sum())}
    if out["events_target"] == 0 or out["events_comparator"] == 0:
        return out
    cph = CoxPHFitter().fit(df[["time", "event", "treatment", "set_id"]], "time", "event", cluster_col="set_id",
                            robust=True)
    s = cph.summary.loc["treatment"]
    out |= {"log_hr": float(s["coef"]), "se_log_hr": float(s["se(coef)"]), "hr": float(s["exp(coef)"]),
            "hr_ci_low": float(s["exp(coef) lower 95%"]), "hr_ci_high": float(s["exp(coef) upper 95%"]),
            "p": float(s["p"])}
    plain = CoxPHFitter().fit(df[["time", "event", "treatment"]], "time", "event")
    out["ph_test_p"] = float(proportional_hazard_test(plain, df[["time", "event", "treatment"]],
                                                      time_transform="km").p_value[0])
    km = {a: KaplanMeierFitter().fit(time_[t == a], ev[t == a]) for a in (0, 1)}
    out["km_final"] = {str(a): float(k.survival_function_.iloc[-1, 0]) for a, k in km.items()}
    out["logrank_p"] = float(logrank_test(time_[t == 1], time_[t == 0], ev[t == 1], ev[t == 0]).p_value)
    r1, r0 = out["events_target"] / out["n_target"], out["events_comparator"] / out["n_comparator"]
    out |= {"risk_target": r1, "risk_comparator": r0, "rd": r1 - r0, "rr": r1 / r0,
            "or": (r1 / (1 - r1)) / (r0 / (1 - r0))}
    hr = out["hr"] if out["hr"] >= 1 else 1 / out["hr"]
    out["evalue"] = hr + math.sqrt(hr * (hr - 1))
    return out


def fit_null(b: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Normal empirical null N(mu, tau^2) by maximum likelihood (Schuemie et al. 2014)."""
    nll = lambda p: -stats.norm.logpdf(b, p[0], np.sqrt(np.exp(2 * p[1]) + se**2)).sum()
    res = optimize.minimize(nll, [0.0, math.log(0.1)], method="Nelder-Mead")
    return float(res.x[0]), float(math.exp(res.x[1]))


def run_plain(db: str, study: str) -> dict:
    steps: dict[str, list[float]] = {}
    t_all = clock()
    s = PlainStudy(db, study, steps)
    spec = s.spec
    rows = []
    sizes = {}
    for name, comp in spec.comparisons.items():
        t0 = clock()
        pop = s.population(name)
        t1 = clock()
        sizes[name] = [int((pop["treatment"] == 1).sum()), int((pop["treatment"] == 0).sum())]
        X = pop[[c for c in pop.columns if c.startswith("cov_")]]
        X = X.loc[:, X.std(ddof=0) > 0]
        tr = pop["treatment"].to_numpy()
        ps = sm.Logit(tr, sm.add_constant(X.to_numpy())).fit(disp=0, maxiter=spec.analysis.propensity.max_iter).predict()
        m = next(a for a in spec.analysis.adjustments if a.kind == "matching")  # the matching the peer reproduces
        sets = greedy_match(ps, tr, m.caliper, m.seed)
        t2 = clock()
        extract = fit = np.zeros(2)
        for outcome in list(dict.fromkeys(comp.outcomes + comp.negative_controls)):
            a = clock()
            o = s.outcome(pop, outcome)
            b = clock()
            frame = pd.DataFrame({"treatment": tr, "time": np.maximum(o["time"].to_numpy(float), 0.5),
                                  "event": o["event"].to_numpy(int), "set_id": sets})
            frame = frame[(sets >= 0) & ~o["prior"].to_numpy()].reset_index(drop=True)
            rows.append({"comparison": name, "outcome": outcome, "negative_control": outcome in comp.negative_controls,
                         **estimate(frame)})
            extract = extract + (b - a)
            fit = fit + (clock() - b)
        steps[f"{name}: cohorts + analysis table"] = list(t1 - t0)
        steps[f"{name}: propensity + matching"] = list(t2 - t1)
        steps[f"{name}: outcomes: extraction"] = list(extract)
        steps[f"{name}: outcomes: estimation (lifelines)"] = list(fit)
    t3 = clock()
    est = pd.DataFrame(rows)
    for name in spec.comparisons:
        nc = est[(est["comparison"] == name) & est["negative_control"] & est["log_hr"].notna()]
        if len(nc) >= 3:
            mu, tau = fit_null(nc["log_hr"].to_numpy(), nc["se_log_hr"].to_numpy())
            sel = (est["comparison"] == name) & est["log_hr"].notna()
            z = (est.loc[sel, "log_hr"] - mu) / np.sqrt(tau**2 + est.loc[sel, "se_log_hr"] ** 2)
            est.loc[sel, "calibrated_p"] = 2 * stats.norm.sf(np.abs(z))
    with tempfile.TemporaryDirectory() as out:
        est.drop(columns=["km_final"], errors="ignore").to_parquet(Path(out) / "estimates.parquet")
        Path(out, "results.json").write_text(est.to_json(orient="records"))
    steps["calibration + results writing (JSON, Parquet)"] = list(clock() - t3)
    estimates = {f"{r['comparison']}/{r['outcome']}": {k: r.get(k) for k in ("n_target", "n_comparator", "hr", "hr_ci_low",
                                                                             "hr_ci_high")} for r in rows}
    return {"total_s": float(clock()[0] - t_all[0]), "steps": steps, "estimates": estimates,
            "cohorts_before_matching": sizes}
