"""Meta-analysis specification (pydantic; round-trips YAML and JSON) and its pure runner.

A spec names the data (a CSV path relative to the spec file, or ``bundled:jaki_rct_salt20``),
the measure and method, optional subgroups and the GRADE judgements. :func:`run_spec` takes the
spec and the already-loaded data frame; reading files is the caller's job (the CLI).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from follicle.synthesis.auxiliary import NotEstimable, attempt, auxiliary_analyses
from follicle.synthesis.grade import DomainRating, evidence_profile
from follicle.synthesis.pooling import METHODS, MetaResult, meta_analysis
from follicle.synthesis.sensitivity import subgroups
from follicle.synthesis.tabular import MEASURE_LAYOUT, effects_from_frame


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Continuity(_Model):
    """Continuity correction (metafor names): *add* to all cells of the tables chosen by *to*."""

    add: float = Field(0.5, ge=0)
    to: Literal["only0", "all", "if0all", "none"] = "only0"
    drop00: bool | None = Field(
        None, description="drop double-zero studies; default as metafor: False for EE/RE, True for MH/PETO"
    )


class Judgement(_Model):
    rating: Literal["not serious", "serious", "very serious"]
    reason: str = Field(min_length=1)


class GradeSpec(_Model):
    outcome: str
    design: Literal["rct", "observational"] = "rct"
    baseline_risk: float | Literal["control"] | None = Field(
        "control", description="control-group risk for absolute effects; 'control' = pooled placebo-arm risk"
    )
    risk_of_bias: Judgement | None = None
    indirectness: Judgement | None = None
    publication_bias: Judgement | None = None
    inconsistency: Judgement | None = Field(None, description="overrides the suggestion from I^2")
    imprecision: Judgement | None = Field(None, description="overrides the suggestion from the CI and OIS")
    upgrades: dict[Literal["large_effect", "dose_response", "plausible_confounding"], int] = Field(default_factory=dict)

    @field_validator("baseline_risk")
    @classmethod
    def _risk(cls, v: object) -> object:
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError(f"baseline_risk must be between 0 and 1; got {v}")
        return v


class MetaSpec(_Model):
    """One meta-analysis: data, measure, method, subgroups, GRADE."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = ""
    data: str = Field(description="CSV path (relative to the spec file) or bundled:jaki_rct_salt20")
    where: dict[str, list[str]] = Field(default_factory=dict, description="keep rows whose column is in the list")
    measure: Literal["OR", "RR", "RD", "MD", "SMD", "GEN"] = "OR"
    method: Literal["EE", "MH", "PETO", "DL", "REML", "PM", "ML", "SJ", "HE", "EB", "HS", "HSk"] = "REML"
    ratio: bool = Field(False, description="GEN only: estimates are log ratios (exponentiate results)")
    knha: bool = False
    level: float = Field(0.95, gt=0, lt=1)
    continuity: Continuity = Field(default_factory=Continuity)
    subgroup: str | None = Field(None, description="column whose values define subgroups")
    favours: tuple[str, str] | None = Field(
        None, description="forest-plot labels for the left and right of the null line, e.g. [placebo, JAK inhibitor]"
    )
    note: str = Field("", description="one line printed under the forest plot (e.g. how the data were derived)")
    grade: GradeSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MetaSpec:
        assert set(METHODS) >= {self.method}
        if self.method in ("MH", "PETO") and MEASURE_LAYOUT[self.measure] != "binary":
            raise ValueError(f"method {self.method} needs a binary measure (OR, RR, RD); got {self.measure}")
        if self.ratio and self.measure != "GEN":
            raise ValueError("ratio applies to measure GEN only (OR and RR are ratios already)")
        if self.method in ("MH", "PETO", "EE") and self.knha:
            raise ValueError(f"knha applies to random-effects methods, not {self.method}")
        return self

    # --- round trip -------------------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=False), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> MetaSpec:
        return cls.model_validate(yaml.safe_load(text))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> MetaSpec:
        return cls.model_validate_json(text)

    def spec_hash(self) -> str:
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def drop00_for(self) -> bool:
        if self.continuity.drop00 is not None:
            return self.continuity.drop00
        return self.method in ("MH", "PETO")


def _judgement(name: str, j: Judgement | None) -> DomainRating | None:
    return None if j is None else DomainRating(name, j.rating, j.reason)


def analyse(frame: pd.DataFrame, spec: MetaSpec, source: str = "data") -> MetaResult:
    """Pool the rows of *frame* as *spec* says."""
    es = effects_from_frame(frame, measure=spec.measure, add=spec.continuity.add, to=spec.continuity.to,
                            drop00=spec.drop00_for() and spec.method not in ("MH", "PETO"), source=source, ratio=spec.ratio)
    return meta_analysis(es, method=spec.method, knha=spec.knha, level=spec.level, add=spec.continuity.add,
                         to=spec.continuity.to, drop00=spec.drop00_for())


def run_spec(spec: MetaSpec, frame: pd.DataFrame, source: str = "data") -> dict[str, Any]:
    """Everything a spec asks for: overall, subgroups with the test for differences,
    leave-one-out, influence, Egger's test and trim-and-fill (inverse-variance methods), GRADE.

    Only the overall pooled result can fail the run (bad data, no study left). Every other
    part is isolated: if it cannot be computed it is reported as ``{"estimable": False,
    "reason": ...}`` and the rest stands.
    """
    for col, values in spec.where.items():
        if col not in frame.columns:
            raise KeyError(f"spec 'where' names column {col!r}, not in the data")
        frame = frame[frame[col].astype(str).isin(values)]
    frame = frame.reset_index(drop=True)
    if spec.subgroup and spec.subgroup not in frame.columns:
        raise KeyError(f"spec 'subgroup' names column {spec.subgroup!r}, not in the data")
    overall = analyse(frame, spec, source)
    from follicle import __version__

    out: dict[str, Any] = {"spec": spec.model_dump(mode="json"), "spec_hash": spec.spec_hash(),
                           "follicle_version": __version__, "overall": overall}
    es = effects_from_frame(frame, measure=spec.measure, add=spec.continuity.add, to=spec.continuity.to,
                            drop00=spec.drop00_for() and spec.method not in ("MH", "PETO"), source=source, ratio=spec.ratio)
    kw = {"method": spec.method, "knha": spec.knha, "level": spec.level}
    if spec.subgroup:
        keep = frame["study"].astype(str).str.strip().isin(es.labels)
        sg = attempt("subgroups", subgroups, es, frame.loc[keep, spec.subgroup].astype(str).tolist(), **kw)
        out["subgroups"] = sg.to_dict() if isinstance(sg, NotEstimable) else {
            "estimable": True, "groups": sg.groups, "q_between": sg.q_between, "df": sg.df, "pval": sg.pval,
            "single_study_groups": list(sg.singletons)}
    out.update(auxiliary_analyses(es, overall).to_dict(es.k))
    if spec.grade is not None:
        if not overall.estimable:
            out["grade"] = NotEstimable("grade", f"the pooled estimate is not estimable "
                                                 f"({overall.not_estimable['estimate']})").to_dict()
        else:
            g = attempt("grade", _grade, spec, frame, overall)
            out["grade"] = g.to_dict() if isinstance(g, NotEstimable) else {"estimable": True} | g
    return out


def _grade(spec: MetaSpec, frame: pd.DataFrame, res: MetaResult) -> dict[str, Any]:
    g = spec.grade
    assert g is not None
    binary = MEASURE_LAYOUT[spec.measure] == "binary"
    participants = None
    p0: float | None = None
    if binary:
        participants = int(frame["total_t"].sum() + frame["total_c"].sum())
        p0 = float(frame["events_c"].sum() / frame["total_c"].sum()) if g.baseline_risk == "control" else g.baseline_risk  # type: ignore[assignment]
    elif isinstance(g.baseline_risk, float):
        p0 = g.baseline_risk
    ratio = res.is_ratio
    eff = float(np.exp(res.estimate)) if ratio else res.estimate
    ci = (float(np.exp(res.ci_low)), float(np.exp(res.ci_high))) if ratio else (res.ci_low, res.ci_high)
    prof = evidence_profile(
        outcome=g.outcome, design=g.design, measure=spec.measure, effect=eff, effect_ci=ci, k=res.k, i2=res.i2,
        q_p=res.q_p, participants=participants, baseline_risk=p0,
        risk_of_bias=_judgement("risk of bias", g.risk_of_bias),
        indirectness=_judgement("indirectness", g.indirectness),
        publication_bias=_judgement("publication bias", g.publication_bias),
        inconsistency=_judgement("inconsistency", g.inconsistency),
        imprecision=_judgement("imprecision", g.imprecision),
        upgrades=dict(g.upgrades),
        study_effects=list(res.yi),
    )
    return {"profile": prof, "summary_of_findings": prof.sof_row(),
            "disclaimer": "GRADE suggestions support and do not replace the reviewers' judgement."}
