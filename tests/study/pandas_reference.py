"""An independent, plain-pandas computation of a study population from raw CDM tables.

Written from the spec's documented semantics (docs/analysis-table.md), without Ibis or any
Follicle query code, so the tests can compare the engine against it. Slow and simple on
purpose: loops and boolean masks over in-memory frames.
"""

from __future__ import annotations

import pandas as pd

from follicle.study.spec import StudySpec, Window

DOMAIN = {
    "condition": ("condition_occurrence", "condition_concept_id", "condition_source_concept_id",
                  "condition_source_value", "condition_start_date", "condition_end_date"),
    "drug": ("drug_exposure", "drug_concept_id", "drug_source_concept_id", "drug_source_value",
             "drug_exposure_start_date", "drug_exposure_end_date"),
}
DAY = pd.Timedelta(days=1).as_unit("s")


def _codes(entry_code: str) -> list[str]:
    code = entry_code.upper()
    if "-" in code:
        lo, hi = code.split("-")
        return [f"{lo[0]}{n:02d}" for n in range(int(lo[1:]), int(hi[1:]) + 1)]
    return [code.replace(".", "")]


class Reference:
    """Raw tables (pandas) and the spec; methods mirror the spec's steps."""

    def __init__(self, tables: dict[str, pd.DataFrame], spec: StudySpec) -> None:
        self.t = {k: v.copy() for k, v in tables.items()}
        for frame in self.t.values():
            for col in frame.columns:
                if col.endswith("_date"):
                    frame[col] = pd.to_datetime(frame[col]).astype("datetime64[s]")  # room for far offsets
        self.spec = spec
        self._events: dict[str, pd.DataFrame] = {}
        self._norm: dict[str, pd.Series] = {}

    # -- concept sets --------------------------------------------------------------------------
    def _ids(self, entries: list) -> tuple[set[int], set[int], list[tuple[str, bool]]]:
        concept, anc = self.t["concept"], self.t["concept_ancestor"]
        std: set[int] = set()
        src: set[int] = set()
        pats: list[tuple[str, bool]] = []
        for e in entries:
            if e.vocabulary == "ICD10CM":
                codes = _codes(e.code)
                pats += [(c, e.descendants) for c in codes]
                norm = concept.concept_code.astype(str).str.upper().str.replace(".", "", regex=False)
                hit = norm.apply(lambda v, d=e.descendants, cs=tuple(codes): any(v.startswith(c) if d else v == c for c in cs))
                src |= set(concept.loc[hit & (concept.vocabulary_id == "ICD10CM"), "concept_id"])
                continue
            if e.vocabulary == "OMOP":
                found = {int(e.code)}
            elif e.vocabulary == "RxNorm":
                rx = concept[concept.vocabulary_id == "RxNorm"]
                if e.code.isdigit():
                    found = set(rx.loc[rx.concept_code.astype(str) == e.code, "concept_id"])
                else:
                    m = (rx.concept_class_id == "Ingredient") & (rx.concept_name.str.lower() == e.code.lower())
                    found = set(rx.loc[m, "concept_id"])
            elif e.vocabulary == "ATC":
                found = set(concept.loc[(concept.vocabulary_id == "ATC") & (concept.concept_code == e.code), "concept_id"])
            else:
                raise NotImplementedError(e.vocabulary)
            if e.descendants and found:
                found |= set(anc.loc[anc.ancestor_concept_id.isin(found), "descendant_concept_id"])
            std |= found
        return std, src, pats

    def events(self, name: str) -> pd.DataFrame:
        if name in self._events:
            return self._events[name]
        cs = self.spec.concept_sets[name]
        table, ccol, scol, vcol, start, end = DOMAIN[cs.domain]
        df = self.t[table]
        std, src, pats = self._ids(cs.include)
        xstd, xsrc, xpats = self._ids(cs.exclude)
        if table not in self._norm:
            self._norm[table] = df[vcol].astype("string[pyarrow]").str.upper().str.replace(".", "", regex=False).fillna("")
        norm = self._norm[table]

        def match(ids: set[int], sids: set[int], patterns: list[tuple[str, bool]]) -> pd.Series:
            m = df[ccol].isin(ids) | (df[scol].isin(sids) if scol in df else False)
            for code, prefix in patterns:
                m |= norm.str.startswith(code) if prefix else norm == code
            return m

        keep = match(std, src, pats) & ~match(xstd, xsrc, xpats)
        out = pd.DataFrame({
            "person_id": df.loc[keep, "person_id"].astype("int64"),
            "concept_id": df.loc[keep, ccol].astype("int64"),
            "start": df.loc[keep, start],
            "end": (df.loc[keep, end] if end in df else df.loc[keep, start]).fillna(df.loc[keep, start]),
            "route": df.loc[keep, "route_concept_id"] if "route_concept_id" in df else 0,
        })
        self._events[name] = out
        return out

    # -- cohorts -------------------------------------------------------------------------------
    @staticmethod
    def _in_window(ev: pd.DataFrame, idx: pd.Series, w: Window) -> pd.Series:
        anchor = ev.person_id.map(idx)
        m = anchor.notna()
        if w.start is not None:
            m &= ev.start >= anchor + w.start * DAY
        if w.end is not None:
            m &= ev.start <= anchor + w.end * DAY
        return m

    def _any(self, ev: pd.DataFrame, idx: pd.Series, w: Window) -> pd.Series:
        hit = set(ev.loc[self._in_window(ev, idx, w), "person_id"])
        return pd.Series(idx.index.isin(list(hit)), index=idx.index)

    def cohort(self, name: str) -> tuple[pd.DataFrame, list[int]]:
        """Members (index: person_id; index_date, cohort_end, obs_end, yob, gender, age) and attrition."""
        cs = self.spec.cohorts[name]
        ev = self.events(cs.entry.concept_set)
        if cs.route is not None:
            r = ev.route.fillna(0)
            keep = pd.Series(True, index=ev.index)
            if cs.route.include:
                keep = r.isin(cs.route.include)
            keep &= ~r.isin(cs.route.exclude)
            keep = keep | (r == 0) if cs.route.keep_unknown else keep & (r != 0)
            if cs.route.exclude_concept_set:
                keep &= ~ev.concept_id.isin(set(self.events(cs.route.exclude_concept_set).concept_id))
            ev = ev[keep]
        idx = ev.groupby("person_id").start.min()
        counts = [len(idx)]
        op = self.t["observation_period"]
        op = op.assign(idx=op.person_id.map(idx)).dropna(subset=["idx"])
        op = op[(op.observation_period_start_date <= op.idx) & (op.observation_period_end_date >= op.idx)]
        obs_start = op.groupby("person_id").observation_period_start_date.min()
        obs_end = op.groupby("person_id").observation_period_end_date.max()
        person = self.t["person"].set_index("person_id")
        alive = pd.Series(idx.index.isin(person.index), index=idx.index)
        masks = [alive, pd.Series(idx.index.isin(obs_start.index), index=idx.index)]
        prior = max(cs.prior_observation_days, cs.washout_days or 0)
        if prior:
            masks.append(((idx - obs_start.reindex(idx.index)).dt.days >= prior).fillna(False))
        if cs.washout_days is not None:
            for s in cs.washout_concept_sets or [cs.entry.concept_set]:
                wev = ev if s == cs.entry.concept_set else self.events(s)
                masks.append(~self._any(wev, idx, Window(start=-cs.washout_days, end=-1)))
        if cs.min_exposures is not None:
            e = ev[self._in_window(ev, idx, cs.min_exposures.window)]
            n = e.groupby("person_id").start.nunique().reindex(idx.index).fillna(0)
            masks.append(n >= cs.min_exposures.count)
        for crit in cs.require:
            masks.append(self._any(self._crit_events(crit), idx, crit.window))
        yob = person.year_of_birth.reindex(idx.index)
        age = idx.dt.year - yob
        if cs.age is not None:
            m = pd.Series(True, index=idx.index)
            if cs.age.min is not None:
                m &= age >= cs.age.min
            if cs.age.max is not None:
                m &= age <= cs.age.max
            masks.append(m.fillna(False))
        for crit in cs.exclude:
            masks.append(~self._any(self._crit_events(crit), idx, crit.window))
        keep = pd.Series(True, index=idx.index)
        for m in masks:
            keep &= m.astype(bool)
            counts.append(int(keep.sum()))
        members = pd.DataFrame({
            "index_date": idx, "cohort_end": (self._cohort_end(ev, cs.exposure_gap_days) + cs.surveillance_days * DAY).reindex(idx.index).fillna(idx),
            "obs_end": obs_end.reindex(idx.index), "yob": yob, "age": age,
            "gender": person.gender_concept_id.reindex(idx.index),
        })[keep]
        return members, counts

    def _crit_events(self, crit) -> pd.DataFrame:
        if crit.concept_set:
            return self.events(crit.concept_set)
        m, _ = self.cohort(crit.cohort)
        return pd.DataFrame({"person_id": m.index, "start": m.index_date.to_numpy()})

    @staticmethod
    def _cohort_end(ev: pd.DataFrame, gap: int) -> pd.Series:
        """End of the first continuous exposure: chain while start <= running max end + gap."""
        e = ev.sort_values(["person_id", "start", "end"])
        run = e.groupby("person_id").end.cummax()
        prev = run.groupby(e.person_id).shift()
        brk = (prev.notna() & (e.start > prev + gap * DAY)).astype(int)
        era = brk.groupby(e.person_id).cumsum()
        return run[era == 0].groupby(e.person_id[era == 0]).max()

    # -- population ----------------------------------------------------------------------------
    def population(self, comparison: str) -> pd.DataFrame:
        comp = self.spec.comparisons[comparison]
        t, _ = self.cohort(comp.target)
        c, _ = self.cohort(comp.comparator)
        both = t.index.intersection(c.index)
        if comp.overlap == "exclude":
            t, c = t.drop(both), c.drop(both)
        else:
            t_first = t.index_date.reindex(both) < c.index_date.reindex(both)
            c_first = c.index_date.reindex(both) < t.index_date.reindex(both)
            t = t.drop(both[~t_first.to_numpy()])
            c = c.drop(both[~c_first.to_numpy()])
        pop = pd.concat([t.assign(treatment=1), c.assign(treatment=0)])
        tar = self.spec.time_at_risk
        anchor = {"index": pop.index_date, "cohort_start": pop.index_date, "cohort_end": pop.cohort_end}
        start = anchor[tar.start_anchor] + tar.start_offset * DAY
        end = anchor[tar.end_anchor] + tar.end_offset * DAY
        if tar.censor_at_observation_end:
            end = end.where(end <= pop.obs_end, pop.obs_end)
        death = self.t.get("death")
        if tar.censor_at_death and death is not None and len(death):
            dd = pop.index.map(death.groupby("person_id").death_date.min())
            dd = pd.Series(dd, index=pop.index)
            end = end.where(dd.isna() | (end <= dd), dd)
        if tar.max_follow_up_days is not None:
            cap = start + tar.max_follow_up_days * DAY
            end = end.where(end <= cap, cap)
        pop = pop.assign(tar_start=start, tar_end=end)
        pop = pop[(pop.tar_end - pop.tar_start).dt.days >= tar.min_days_at_risk].copy()
        pop["followup_days"] = (pop.tar_end - pop.index_date).dt.days
        cov = self.spec.covariates
        for name in cov.concept_sets:
            pop[f"cov_{name}"] = self._any(self.events(name), pop.index_date, cov.window).astype(int)
        for name in dict.fromkeys(comp.outcomes + comp.negative_controls):
            o = self.spec.outcomes[name]
            ev = self.events(o.concept_set)
            ev = ev[ev.person_id.isin(pop.index)]
            ts, te = ev.person_id.map(pop.tar_start), ev.person_id.map(pop.tar_end)
            first = ev[(ev.start >= ts) & (ev.start <= te)].groupby("person_id").start.min()
            before = ev.start < ts
            if o.prior_lookback_days is not None:
                before &= ev.start >= ts - o.prior_lookback_days * DAY
            prior_people = set(ev.loc[before, "person_id"])
            d = first.reindex(pop.index)
            pop[f"{name}_event"] = d.notna().astype(int)
            pop[f"{name}_days"] = (d.fillna(pop.tar_end) - pop.index_date).dt.days
            pop[f"{name}_prior"] = pop.index.isin(list(prior_people)).astype(int)
        return pop.sort_index()
