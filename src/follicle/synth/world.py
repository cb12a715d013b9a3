"""The simulated world: person-level arrays, and views of them for statistics and the CDM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from follicle.errors import InputError
from follicle.synth._util import DAYS_PER_YEAR
from follicle.synth.config import CLASSES, CONFOUNDERS, WorldConfig
from follicle.synth.disease import SUBTYPES, covariates, simulate_disease
from follicle.synth.labs import simulate_labs
from follicle.synth.outcomes import simulate_outcomes
from follicle.synth.population import simulate_population
from follicle.synth.salt import simulate_salt
from follicle.synth.treatment import prescriptions, simulate_treatment

_STREAMS = ("population", "disease", "treatment", "prescriptions", "outcomes", "salt", "labs", "truth")


def _block_seed(seed: int, block: int) -> np.random.SeedSequence:
    """The root of block *block*'s streams; block 0 keeps the seeding of single-block worlds."""
    return np.random.SeedSequence(seed) if block == 0 else np.random.SeedSequence([seed, block])


def _rngs(seed: int, block: int = 0) -> dict[str, np.random.Generator]:
    seqs = _block_seed(seed, block).spawn(len(_STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(_STREAMS, seqs)}


def cdm_rng(seed: int, block: int, k: int) -> np.random.Generator:
    """Stream *k* of the CDM writer (visit lengths, repeated diagnoses) for one block."""
    return np.random.default_rng(seed + k if block == 0 else np.random.SeedSequence([seed, block, k]))


def anchor_covariates(p: dict, d: dict, t: dict) -> dict[str, np.ndarray]:
    """Covariates at each person's anchor date (index if treated, else AA diagnosis, else mid-observation)."""
    mid = (p["obs_start"] + p["obs_end"]) // 2
    anchor = np.where(t["treated"], t["index_day"], np.where(d["aa"], d["aa_dx_day"], mid))
    age = (anchor - p["birth_day"]) / DAYS_PER_YEAR
    return covariates(p, (age - 45) / 10, d["severe"])


def check_size(persons: Any, seed: Any) -> None:
    if not isinstance(persons, (int, np.integer)) or persons < 1:
        raise InputError(f"persons must be a positive integer; got {persons!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed!r}")


def block_sizes(cfg: WorldConfig, persons: int) -> list[int]:
    """Persons in each block: ``block_persons`` each, the last one the remainder."""
    full, rest = divmod(int(persons), cfg.block_persons)
    return [cfg.block_persons] * full + ([rest] if rest else [])


def simulate_block(cfg: WorldConfig, persons: int, seed: int, block: int, progress: Any = None) -> World:
    """Block *block* of a world: its *persons* persons (ids from ``block * block_persons + 1``)."""
    r = _rngs(int(seed), block)
    tick = progress or (lambda _s: None)
    p = simulate_population(cfg, persons, r["population"])
    tick("population")
    d = simulate_disease(cfg, p, r["disease"])
    tick("disease")
    t = simulate_treatment(cfg, p, d, r["treatment"])
    rx = prescriptions(cfg, p, t, r["prescriptions"])
    tick("treatment")
    cov = anchor_covariates(p, d, t)
    first, records = simulate_outcomes(cfg, p, t, cov, r["outcomes"])
    tick("outcomes")
    resp, salt_rows = simulate_salt(cfg, p, d, t, r["salt"])
    lab_rows = simulate_labs(p, d, t, r["labs"])
    tick("salt and labs")
    return World(config=cfg, seed=int(seed), _p=p, _d=d, _t=t, _rx=rx, _cov=cov, _first=first,
                 _records=records, _resp=resp, _salt_rows=salt_rows, _lab_rows=lab_rows,
                 block=block, offset=block * cfg.block_persons)


def simulate(config: WorldConfig | None = None, persons: int = 10_000, seed: int = 0,
             progress: Any = None) -> World:
    """Simulate a world of *persons* persons from *config* (default world if None) with *seed*.

    The persons are drawn block by block (``config.block_persons`` each, see :mod:`follicle.synth.blocks`),
    so this world is the one ``follicle synth`` streams to disk. *progress*, if given, is called as
    ``progress(step_name)`` after each step (of the last block).
    """
    check_size(persons, seed)
    cfg = config or WorldConfig()
    sizes = block_sizes(cfg, persons)
    if len(sizes) == 1:
        return simulate_block(cfg, sizes[0], seed, 0, progress)
    from follicle.synth.blocks import concat_worlds

    last = len(sizes) - 1
    return concat_worlds([simulate_block(cfg, n, seed, b, progress if b == last else None)
                          for b, n in enumerate(sizes)])


@dataclass
class World:
    """A simulated world. Build with :func:`simulate`; day numbers count from 1970-01-01."""

    config: WorldConfig
    seed: int
    _p: dict = field(repr=False)
    _d: dict = field(repr=False)
    _t: dict = field(repr=False)
    _rx: dict = field(repr=False)
    _cov: dict = field(repr=False)
    _first: dict = field(repr=False)
    _records: dict = field(repr=False)
    _resp: dict = field(repr=False)
    _salt_rows: dict = field(repr=False)
    _lab_rows: dict = field(repr=False)
    block: int = 0  # the random-number block this world is (or starts with)
    offset: int = 0  # person_id of row i is offset + i + 1
    bounds: tuple[tuple[int, int, int], ...] = ()  # (block, first row, end row) when several blocks
    ids: np.ndarray | None = field(default=None, repr=False)  # person_id per row when not consecutive
    summary: dict | None = field(default=None, repr=False)  # counts of the whole world when this is a part

    @property
    def n(self) -> int:
        return len(self._p["female"])

    def person_ids(self, rows: np.ndarray) -> np.ndarray:
        """The person_id of the given rows."""
        return self.ids[rows] if self.ids is not None else self.offset + rows + 1

    @property
    def persons(self) -> pd.DataFrame:
        """One row per person (person_id = row + 1): demographics, confounders, AA, treatment,
        first event day of each outcome process (``event_<process>``, -1 = none), censoring."""
        p, d, t = self._p, self._d, self._t
        cols: dict[str, Any] = {
            "person_id": self.person_ids(np.arange(self.n)), "female": p["female"], "birth_day": p["birth_day"],
            "race": np.array(["white", "black", "asian", "unknown"])[p["race"]], "hispanic": p["hispanic"],
            "obs_start": p["obs_start"], "obs_end": p["obs_end"], "death_day": p["death_day"],
            **{c: p[c] for c in CONFOUNDERS}, "bmi": p["bmi"],
            "aa": d["aa"], "aa_dx_day": d["aa_dx_day"], "aa_onset_day": d["aa_onset_day"],
            "aa_subtype": np.where(d["subtype"] >= 0, np.array(SUBTYPES)[np.maximum(d["subtype"], 0)], ""),
            "aa_code": d["aa_code"], "salt_baseline": d["salt0"], "severe": d["severe"],
            "treated": t["treated"], "index_day": t["index_day"], "age_index": t["age_index"],
            "class1": _names(t["class1"]), "drug1": _drug_names(t, "drug1"), "n_rx1": t["n_rx1"],
            "course1_end": t["end1"], "switch": t["switch"], "start2": np.where(t["switch"], t["start2"], -1),
            "class2": _names(t["class2"]), "drug2": _drug_names(t, "drug2"),
            "ivmp": t["ivmp"], "ivmp_day": t["ivmp_day"], "topical_ruxolitinib_start": t["topical_start"],
            **self._resp,
        }
        for name, days in self._first.items():
            cols[f"event_{name}"] = days
        return pd.DataFrame(cols)

    def outcome_day(self, outcome: str) -> np.ndarray:
        """First day of a study outcome (union of its processes), -1 if none."""
        so = next((s for s in self.config.study_outcomes if s.name == outcome), None)
        if so is None:
            raise InputError(f"unknown outcome {outcome!r}; known: {[s.name for s in self.config.study_outcomes]}")
        days = np.stack([self._first[p] for p in so.processes])
        days = np.where(days < 0, np.iinfo(np.int64).max, days).min(axis=0)
        return np.where(days == np.iinfo(np.int64).max, -1, days)

    def history_before(self, outcome: str, day: np.ndarray) -> np.ndarray:
        """True where a person has a record of *outcome*'s codes before *day*.

        That is the outcome's own first event, or a baseline confounder written with the same codes
        (prior VTE for ``vte``, malignancy history for ``malignancy``), as a study searching the CDM
        for those codes before index would find.
        """
        so = next(s for s in self.config.study_outcomes if s.name == outcome)
        od = self.outcome_day(outcome)
        prior = (od >= 0) & (od < day)
        codes = {c for pn in so.processes for c in self.config.process(pn).codes}
        for spec in self.config.confounders:
            shared = np.array([c in codes for c in spec.codes])
            if shared.any():
                rec = self._p[f"{spec.name}_day"]
                prior |= self._p[spec.name] & shared[self._p[f"{spec.name}_code"]] & (rec >= 0) & (rec < day)
        return prior

    def cohort_frame(self, target: str, comparator: str, *, min_prescriptions: int = 2,
                     exclude_psych_history: bool = True) -> pd.DataFrame:
        """A quick analysis table without OMOP, for replicate simulations.

        New users of *target* or *comparator* as first systemic class (index = first prescription),
        with >= *min_prescriptions* prescriptions in the first course, optionally without any
        psychiatric/sleep history before index. Per outcome: ``<o>_event``, ``<o>_time``
        (days from index to event or censoring) and ``<o>_prior`` (outcome before index).
        Columns ``age_index``, ``female`` and the confounders are the covariates.
        """
        for c in (target, comparator):
            if c not in CLASSES:
                raise InputError(f"class must be one of {list(CLASSES)}; got {c!r}")
        t, p = self._t, self._p
        k1 = t["class1"]
        sel = t["treated"] & np.isin(k1, [CLASSES.index(target), CLASSES.index(comparator)])
        sel &= t["n_rx1"] >= min_prescriptions
        idx = t["index_day"]
        n_rx_obs = np.bincount(self._rx["person"][self._rx["course"] == 1], minlength=self.n)
        sel &= n_rx_obs >= min_prescriptions
        if exclude_psych_history:
            for so in self.config.study_outcomes:
                if so.group == "neuropsychiatric":
                    sel &= ~self.history_before(so.name, idx)
        rows = np.flatnonzero(sel)
        df = pd.DataFrame({
            "person_id": self.person_ids(rows), "treatment": (k1[rows] == CLASSES.index(target)).astype(int),
            "index_day": idx[rows], "age_index": t["age_index"][rows], "female": p["female"][rows].astype(int),
            "severe": self._d["severe"][rows].astype(int),
            **{c: p[c][rows].astype(int) for c in CONFOUNDERS if c != "psych_history"},
            "censor_day": p["obs_end"][rows],
        })
        for so in self.config.study_outcomes:
            od = self.outcome_day(so.name)[rows]
            prior = self.history_before(so.name, idx)[rows]
            event = (od >= idx[rows]) & ~prior
            df[f"{so.name}_prior"] = prior
            df[f"{so.name}_event"] = event
            df[f"{so.name}_time"] = np.where(event, od - idx[rows], p["obs_end"][rows] - idx[rows])
        return df

    def to_cdm(self) -> dict[str, pa.Table]:
        """OMOP CDM v5.4 tables (clinical + bundled vocabulary) as Arrow tables, equal to what
        ``follicle synth`` streams for the same config, size and seed."""
        from follicle.synth.blocks import split_world
        from follicle.synth.to_cdm import CdmIds, build_tables, fixed_tables

        ids = CdmIds()
        parts = [build_tables(b, ids) for b in split_world(self)]
        tables = {name: pa.concat_tables([pt[name] for pt in parts]) for name in parts[0]}
        return {**tables, **fixed_tables(self.n, self.seed)}

    def truth(self, *, max_followup_days: int | None = None, estimand: str = "att") -> dict[str, Any]:
        """Ground truth (JSON-able): every parameter and the true HR of each comparison x outcome, for the
        target-class initiators (``estimand="att"``) or both classes' initiators (``"ate"``)."""
        from follicle.synth.truth import compute_truth

        return compute_truth(self, max_followup_days=max_followup_days, estimand=estimand)


def _names(k: np.ndarray) -> np.ndarray:
    return np.where(k >= 0, np.array(CLASSES)[np.maximum(k, 0)], "")


def _drug_names(t: dict, key: str) -> np.ndarray:
    names = np.array(t["drugs"].names)
    return np.where(t[key] >= 0, names[np.maximum(t[key], 0)], "")
