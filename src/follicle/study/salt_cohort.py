"""Response predictor studies on an OMOP CDM: SALT measurements of a drug cohort, in the database.

The Wada-Irimada design (mission.md section 3) as data: new users of a drug (first exposure is
the index date) with a baseline SALT at or above a threshold; the SALT at a landmark (9 months
+/- 6 weeks) gives the endpoint; baseline predictors come from person, condition, drug and
measurement rows. Every filter, join and first/last choice runs in the database as an Ibis
expression; only the analysis table (one row per cohort member) reaches Python.

SALT is read from measurement rows with the local concept ids of :mod:`follicle.vocab.local`
(the synthetic world writes them; a site maps its own SALT records to them).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import ibis
import numpy as np
import pandas as pd
import yaml
from ibis import _
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from follicle.textinput import load_data
from follicle import __version__
from follicle.errors import DatabaseError, InputError, SpecError
from follicle.study.spec import ConceptId
from follicle.vocab import local

FEMALE, MALE = 8532, 8507  # OMOP gender concepts


class Codes(BaseModel):
    """Concepts to match: standard concept ids and/or source values (exact or by prefix)."""

    model_config = ConfigDict(extra="forbid")
    concept_ids: list[ConceptId] = []
    source_values: list[str] = []
    source_prefixes: list[str] = []
    route_concept_ids: list[ConceptId] = []  # drugs only: only these routes (e.g. 4171047 intravenous)
    not_route_concept_ids: list[ConceptId] = []  # drugs only: any route but these (a missing route counts)

    @model_validator(mode="after")
    def _some(self) -> Codes:
        if not (self.concept_ids or self.source_values or self.source_prefixes):
            raise ValueError("give at least one of concept_ids, source_values, source_prefixes")
        return self


class CohortSpec(BaseModel):
    """New users of a drug with a baseline SALT (the last one in the baseline window)."""

    model_config = ConfigDict(extra="forbid")
    drug: Codes
    include_descendants: bool = True
    exclude_prior_drugs: Codes | None = Field(
        None, description="active new-user design: no exposure to these drugs on or before the index date")
    baseline_window_days: int = Field(90, ge=0, description="baseline SALT at most this many days before index")
    min_baseline_salt: float = Field(50.0, ge=0, le=100)
    min_followup_days: int | None = Field(
        None, ge=0, description="observation period must run at least this long after index (not censored early)")
    min_exposure_days: int | None = Field(
        None, ge=0, description="last exposure to the drug ends at least this many days after index (still treated)")


class OutcomeSpec(BaseModel):
    """SALT endpoint at a landmark, with the imputation used when no visit falls in the window."""

    model_config = ConfigDict(extra="forbid")
    response: Literal["salt20", "salt10", "salt50", "salt75", "salt90"] = "salt20"
    landmark_days: int = Field(274, gt=0)
    window_days: int = Field(42, ge=0)
    imputation: Literal["nri", "locf", "none"] = "nri"


class PredictorSpec(BaseModel):
    """One baseline predictor; ``kind`` says how it is derived at the index date."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: Literal["female", "age", "condition_history", "drug_history", "condition_duration_years",
                  "condition_category", "baseline_measurement", "baseline_salt_le"]
    codes: Codes | None = None
    procedure_codes: Codes | None = None  # drug_history: also count these procedures (e.g. an IV pulse)
    categories: dict[str, Codes] | None = None
    reference: str | None = None
    at_most: float | None = None  # condition_duration_years: 1 when duration <= at_most; baseline_salt_le
    concept_id: ConceptId | None = None  # baseline_measurement

    @model_validator(mode="after")
    def _fields(self) -> PredictorSpec:
        if self.kind == "drug_history" and self.codes is None and self.procedure_codes is not None:
            return self
        need = {"condition_history": "codes", "drug_history": "codes", "condition_duration_years": "codes",
                "condition_category": "categories", "baseline_measurement": "concept_id",
                "baseline_salt_le": "at_most"}.get(self.kind)
        if need and getattr(self, need) is None:
            raise ValueError(f"predictor {self.name!r} of kind {self.kind!r} needs {need!r}")
        if self.kind == "condition_category" and self.reference and self.reference not in (self.categories or {}):
            raise ValueError(f"predictor {self.name!r}: reference {self.reference!r} is not a category")
        return self


class AnalysisSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    firth: bool = False
    linear_outcome: bool = True  # also regress percent regrowth (the improvement rate)
    screen: bool = True  # univariable screen (one model per predictor) before the multivariable model
    subgroups: list[str] = []
    conf_level: float = Field(0.95, gt=0, lt=1)
    seed: int = 0


class ResponseStudySpec(BaseModel):
    """A response predictor study on the CDM (round-trips JSON and YAML)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    cohort: CohortSpec
    outcome: OutcomeSpec = OutcomeSpec()
    predictors: list[PredictorSpec]
    analysis: AnalysisSpec = AnalysisSpec()

    @model_validator(mode="after")
    def _unique(self) -> ResponseStudySpec:
        names = [p.name for p in self.predictors]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"predictor names must be unique; repeated: {sorted(dup)}")
        bad = [s for s in self.analysis.subgroups if s not in names]
        if bad:
            raise ValueError(f"subgroups must be predictors; unknown: {bad}")
        return self

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def load_spec(path: str | Path) -> ResponseStudySpec:
    """Read a YAML (or JSON) spec; every invalid field is listed in the :class:`SpecError`."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        data = load_data(path, what="response study spec")
    except InputError as exc:
        raise SpecError(str(exc)) from None
    try:
        return ResponseStudySpec.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()]
        raise SpecError(f"{path.name}: invalid response study spec", problems=problems) from None


# --- extraction (Ibis) -----------------------------------------------------------------------


def _match(table, codes: Codes, concept_col: str, source_col: str):
    pred = ibis.literal(False)
    if codes.concept_ids:
        pred = pred | table[concept_col].isin(codes.concept_ids)
    if codes.source_values:
        pred = pred | table[source_col].isin(codes.source_values)
    for prefix in codes.source_prefixes:
        pred = pred | table[source_col].startswith(prefix)
    return pred


def _last_per_person(t, order):
    w = ibis.window(group_by=t.person_id, order_by=order)
    return t.mutate(_rn=ibis.row_number().over(w)).filter(_._rn == 0).drop("_rn")


class _Cdm:
    def __init__(self, con, schema: str | None) -> None:
        self.con, self.schema = con, schema

    def __call__(self, name: str):
        try:
            return self.con.table(name, database=self.schema) if self.schema else self.con.table(name)
        except Exception as exc:  # backend-specific "table not found" errors
            raise DatabaseError(f"CDM table {name!r} not found{f' in schema {self.schema!r}' if self.schema else ''}: {exc}") from None


def _drug_concepts(cdm: _Cdm, codes: Codes, descendants: bool) -> Codes:
    ids = list(codes.concept_ids)
    if descendants and ids:
        ca = cdm("concept_ancestor")
        desc = ca.filter(ca.ancestor_concept_id.isin(ids)).descendant_concept_id.as_table().to_pyarrow()
        ids = sorted(set(ids) | set(desc.column(0).to_pylist()))
    return codes.model_copy(update={"concept_ids": ids})


def _drug_rows(table, codes: Codes):
    pred = _match(table, codes, "drug_concept_id", "drug_source_value")
    if codes.route_concept_ids:
        pred = pred & table.route_concept_id.isin(codes.route_concept_ids)
    if codes.not_route_concept_ids:
        pred = pred & (table.route_concept_id.isnull() | ~table.route_concept_id.isin(codes.not_route_concept_ids))
    return pred


def _salt(cdm: _Cdm, index, lo: int, hi: int):
    m = cdm("measurement")
    m = m.filter((m.measurement_concept_id == local.SALT_TOTAL) & m.value_as_number.notnull())
    j = index.join(m.select("person_id", mdate=m.measurement_date, value=m.value_as_number.cast("float64")),
                   "person_id")
    j = j.mutate(dd=j.mdate.delta(j.index_date, unit="day"))
    return j.filter((j.dd >= lo) & (j.dd <= hi))


def _predictor(cdm: _Cdm, index, p: PredictorSpec, base_lo: int):
    """An Ibis table (person_id, <name>) for one predictor, or None when derived in Python."""
    if p.kind in ("female", "age"):
        per = cdm("person")
        j = index.join(per, "person_id")
        if p.kind == "female":
            val = ibis.cases((j.gender_concept_id == FEMALE, 1), (j.gender_concept_id == MALE, 0), else_=ibis.null())
        else:
            val = j.index_date.year() - j.year_of_birth
        return j.select("person_id", **{p.name: val})
    if p.kind in ("condition_history", "condition_duration_years", "condition_category"):
        c = cdm("condition_occurrence")
        j = index.join(c, "person_id")
        j = j.filter(j.condition_start_date <= j.index_date)
        if p.kind == "condition_category":
            labels = list(p.categories)
            label = ibis.cases(*[(_match(j, p.categories[k], "condition_concept_id", "condition_source_value"), k)
                                 for k in labels], else_=ibis.null())
            rank = ibis.cases(*[(label == k, i) for i, k in enumerate(labels)], else_=len(labels))
            j = j.mutate(_label=label, _rank=rank).filter(_._label.notnull())
            last = _last_per_person(j, [ibis.desc(j.condition_start_date), j._rank])
            return last.select("person_id", **{p.name: last._label})
        j = j.filter(_match(j, p.codes, "condition_concept_id", "condition_source_value"))
        if p.kind == "condition_history":
            return j.select("person_id").distinct().mutate(**{p.name: ibis.literal(1)})
        first = j.group_by(["person_id", "index_date"]).aggregate(first=j.condition_start_date.min())
        years = first.index_date.delta(first.first, unit="day") / 365.25
        val = years if p.at_most is None else ibis.cases((years <= p.at_most, 1), else_=0)
        return first.select("person_id", **{p.name: val})
    if p.kind == "drug_history":
        parts = []
        if p.codes is not None:
            d = cdm("drug_exposure")
            j = index.join(d, "person_id")
            pred = _drug_rows(j, p.codes) & (j.drug_exposure_start_date < j.index_date)
            parts.append(j.filter(pred).select("person_id"))
        if p.procedure_codes is not None:
            pr = cdm("procedure_occurrence")
            j = index.join(pr, "person_id")
            pred = _match(j, p.procedure_codes, "procedure_concept_id", "procedure_source_value")
            parts.append(j.filter(pred & (j.procedure_date < j.index_date)).select("person_id"))
        hist = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
        return hist.distinct().mutate(**{p.name: ibis.literal(1)})
    if p.kind == "baseline_measurement":
        m = cdm("measurement")
        m = m.filter((m.measurement_concept_id == p.concept_id) & m.value_as_number.notnull())
        j = index.join(m, "person_id")
        j = j.mutate(dd=j.measurement_date.delta(j.index_date, unit="day"))
        j = j.filter((j.dd >= base_lo) & (j.dd <= 0))
        last = _last_per_person(j, [ibis.desc(j.dd)])
        return last.select("person_id", **{p.name: last.value_as_number.cast("float64")})
    return None


def extract_analysis_table(con, spec: ResponseStudySpec, *, schema: str | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """The analysis table (one row per cohort member) and the attrition, computed in the database."""
    cdm = _Cdm(con, schema)
    cs, oc = spec.cohort, spec.outcome
    drug = _drug_concepts(cdm, cs.drug, cs.include_descendants)
    de = cdm("drug_exposure")
    exposures = de.filter(_drug_rows(de, drug))
    index = exposures.group_by("person_id").aggregate(index_date=exposures.drug_exposure_start_date.min())
    base = _last_per_person(_salt(cdm, index, -cs.baseline_window_days, 0), [ibis.desc(_.dd), ibis.desc(_.value)])
    base = base.select("person_id", "index_date", baseline_salt=base.value)
    lm_lo, lm_hi = oc.landmark_days - oc.window_days, oc.landmark_days + oc.window_days
    land = _salt(cdm, index, lm_lo, lm_hi)
    land = land.mutate(_dist=(land.dd - oc.landmark_days).abs())
    land = _last_per_person(land, [land._dist, land.dd]).select("person_id", landmark_salt=_.value, landmark_day=_.dd)
    locf = _last_per_person(_salt(cdm, index, 1, lm_lo - 1), [ibis.desc(_.dd)]).select(
        "person_id", locf_salt=_.value, locf_day=_.dd)
    # one row per new user; attrition is counted from it, so the whole extraction is one query
    op = cdm("observation_period")
    jo = index.join(op, "person_id")
    jo = jo.filter((jo.observation_period_start_date <= jo.index_date) & (jo.observation_period_end_date >= jo.index_date))
    followup = jo.group_by("person_id").aggregate(
        followup_days=jo.observation_period_end_date.max().delta(jo.index_date.max(), unit="day"))
    treated = exposures.join(index, "person_id")
    treated = treated.group_by("person_id").aggregate(
        exposure_days=treated.drug_exposure_end_date.max().delta(treated.index_date.max(), unit="day"))
    table = index.left_join(base.drop("index_date"), "person_id").drop("person_id_right")
    table = table.left_join(followup, "person_id").drop("person_id_right")
    table = table.left_join(treated, "person_id").drop("person_id_right")
    if cs.exclude_prior_drugs is not None:
        excl = _drug_concepts(cdm, cs.exclude_prior_drugs, cs.include_descendants)
        je = index.join(de, "person_id")
        prior = je.filter(_drug_rows(je, excl) & (je.drug_exposure_start_date <= je.index_date))
        prior = prior.select("person_id").distinct().mutate(prior_excluded=ibis.literal(1))
        table = table.left_join(prior, "person_id").drop("person_id_right")
    table = table.left_join(land, "person_id").drop("person_id_right")
    table = table.left_join(locf, "person_id").drop("person_id_right")
    for p in spec.predictors:
        pt = _predictor(cdm, index, p, -cs.baseline_window_days)
        if pt is not None:
            table = table.left_join(pt, "person_id").drop("person_id_right")
            if p.kind in ("condition_history", "drug_history"):
                table = table.mutate(**{p.name: table[p.name].fill_null(0)})
    df = table.order_by("person_id").to_pandas()
    has_base = df["baseline_salt"].notna()
    attrition = [
        {"step": "new users of the drug (first exposure = index)", "n": len(df)},
        {"step": f"baseline SALT within {cs.baseline_window_days} days before index", "n": int(has_base.sum())},
        {"step": f"baseline SALT >= {cs.min_baseline_salt:g}", "n": int((df["baseline_salt"] >= cs.min_baseline_salt).sum())},
    ]
    df = df[df["baseline_salt"] >= cs.min_baseline_salt]
    if cs.exclude_prior_drugs is not None:
        df = df[df["prior_excluded"].isna()]
        attrition.append({"step": "no earlier exposure to the excluded drugs", "n": len(df)})
    if cs.min_followup_days is not None:
        df = df[df["followup_days"] >= cs.min_followup_days]
        attrition.append({"step": f"observed >= {cs.min_followup_days} days after index", "n": len(df)})
    if cs.min_exposure_days is not None:
        df = df[df["exposure_days"] >= cs.min_exposure_days]
        attrition.append({"step": f"exposed to the drug >= {cs.min_exposure_days} days after index", "n": len(df)})
    return df.reset_index(drop=True), attrition


def _endpoints(df: pd.DataFrame, spec: ResponseStudySpec, attrition: list[dict]) -> pd.DataFrame:
    from follicle.response.endpoints import meets, percent_regrowth

    oc = spec.outcome
    df = df.copy()
    for p in spec.predictors:
        if p.kind == "baseline_salt_le":
            df[p.name] = (df["baseline_salt"] <= p.at_most).astype(int)
    observed = df["landmark_salt"].notna()
    df["assessment"] = np.where(observed, "observed", oc.imputation)
    df["salt"] = df["landmark_salt"]
    if oc.imputation == "locf":
        df["salt"] = df["salt"].fillna(df["locf_salt"]).fillna(df["baseline_salt"])
    df["regrowth_pct"] = percent_regrowth(df["baseline_salt"], df["salt"])
    df["responder"] = meets(oc.response, df["baseline_salt"], df["salt"])
    if oc.imputation == "nri":
        df.loc[~observed, "responder"] = 0.0
    elif oc.imputation == "none":
        df = df[observed]
        attrition.append({"step": "SALT observed at the landmark", "n": len(df)})
    names = [p.name for p in spec.predictors]
    complete = df[names].notna().all(axis=1)
    df = df[complete]
    attrition.append({"step": "all predictors known", "n": len(df)})
    return df


def run_study(spec: ResponseStudySpec, target: str, *, schema: str | None = None) -> dict:
    """Extract, derive endpoints, fit the logistic (and linear) models; aggregate results only."""
    from follicle.cdm.connect import connect, redact
    from follicle.response.predictors import (
        fit_linear,
        fit_logistic,
        subgroup_table,
        univariable_screen,
    )

    con = connect(target, read_only=not str(target).startswith("postgres"))
    try:
        raw, attrition = extract_analysis_table(con, spec, schema=schema)
    finally:
        con.disconnect()
    df = _endpoints(raw, spec, attrition)
    empty = next((a for a in attrition if a["n"] == 0), None)
    if empty is not None:
        raise InputError(f"study {spec.name!r}: no patients left after the step '{empty['step']}' "
                         f"(attrition: {', '.join(str(a['n']) for a in attrition)}); is SALT recorded as measurement "
                         f"concept {local.SALT_TOTAL}?")
    names = [p.name for p in spec.predictors]
    cats = [p.name for p in spec.predictors if p.kind == "condition_category"]
    refs = {p.name: p.reference for p in spec.predictors if p.reference}
    a = spec.analysis
    kw = dict(categorical=cats, reference=refs, conf_level=a.conf_level, source=f"analysis table of {spec.name}")
    out: dict = {
        "study": spec.name, "spec": spec.model_dump(mode="json"), "spec_hash": spec.spec_hash(),
        "follicle_version": __version__,
        "target": redact(str(target)), "attrition": attrition,
        "outcome": {**spec.outcome.model_dump(), "n": len(df), "events": int(df["responder"].sum()),
                    "assessment": [{"how": k, "n": int(v)} for k, v in df["assessment"].value_counts().items()]},
    }
    data = df.reset_index(drop=True)
    if a.screen:
        out["screen"] = univariable_screen(data, "responder", names, firth=a.firth, **kw).to_dict(orient="records")
    out["logistic"] = fit_logistic(data, "responder", names, firth=a.firth, seed=a.seed, **kw).to_dict()
    if a.linear_outcome:
        obs = df[df["regrowth_pct"].notna()].reset_index(drop=True)
        out["linear"] = fit_linear(obs, "regrowth_pct", names, **kw).to_dict()
    out["subgroups"] = [r for by in a.subgroups for r in subgroup_table(df, "responder", by).to_dict(orient="records")]
    return out
